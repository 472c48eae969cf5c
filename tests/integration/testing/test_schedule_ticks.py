"""flow_runner.tick: a schedule's next tick started as workers start it, on the test clock."""

from __future__ import annotations

from datetime import timedelta

import pytest
from pydantic import BaseModel

from pgflow import Flow
from pgflow.errors import UnknownFlowError
from pgflow.testing import FlowRunner


class Report(BaseModel):
    region: str


nightly = Flow("nightly_report", input=Report)


@nightly.step()
def build(input: Report) -> str:
    return f"report for {input.region}"


nightly.schedule("0 3 * * *", input={"region": "eu"}, timezone="Europe/Paris")
nightly.schedule("30 * * * *", input={"region": "us"}, name="half_past")


def test_the_next_tick_runs_with_the_schedules_input_without_waiting(
    flow_runner: FlowRunner,
) -> None:
    before = flow_runner.clock.now()

    run = flow_runner.tick(nightly)

    assert run.status == "completed" and run.output == {"build": "report for eu"}
    moved = flow_runner.clock.now() - before
    assert timedelta(0) < moved <= timedelta(days=1, minutes=1)  # to 03:00 Paris, not a sleep
    again = flow_runner.tick(nightly, "half_past")
    assert again.output == {"build": "report for us"} and again.run_id != run.run_id


def test_ticks_follow_each_other_and_each_starts_once(flow_runner: FlowRunner) -> None:
    first = flow_runner.tick(nightly, "half_past")
    second = flow_runner.tick(nightly, "half_past")
    assert first.run_id != second.run_id
    gap = second.started_at - first.started_at
    assert timedelta(minutes=59) <= gap <= timedelta(minutes=61)  # the next hour's :30


def test_an_unknown_schedule_is_a_clear_error(flow_runner: FlowRunner) -> None:
    with pytest.raises(UnknownFlowError, match="no active schedule named 'weekly'") as refused:
        flow_runner.tick(nightly, "weekly")
    assert "flow.schedule(" in (refused.value.hint or "")
