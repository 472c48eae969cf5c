"""The timing chart: bars placed on the run's axis, waiting and running parts, labels."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from pgflow.ui.timing import timing

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def step(
    slug: str, ready: float | None, claimed: float | None, done: float | None, **extra: Any
) -> dict[str, Any]:
    return {
        "step_slug": slug,
        "status": extra.pop("status", "completed"),
        "step_type": extra.pop("step_type", "single"),
        "started_at": None if ready is None else at(ready),
        "first_claimed_at": None if claimed is None else at(claimed),
        "finished_at": None if done is None else at(done),
        "attempts": extra.pop("attempts", 1),
        "initial_tasks": extra.pop("initial_tasks", 1),
    }


def test_bars_are_percentages_of_the_run() -> None:
    run = {"started_at": at(0), "finished_at": at(10), "now": at(99)}
    chart = timing(run, [step("a", 0, 1, 4), step("b", 4, 6, 10)])
    a, b = chart.bars
    assert (a.wait_x, a.wait_width, a.run_x, a.run_width) == (0.0, 10.0, 10.0, 30.0)
    assert (b.wait_x, b.wait_width, b.run_x, b.run_width) == (40.0, 20.0, 60.0, 40.0)
    assert chart.total == "10.0 s"
    assert a.label == "3.0 s"


def test_a_live_run_is_measured_to_the_database_clock_and_unstarted_steps_are_left_out() -> None:
    run = {"started_at": at(0), "finished_at": None, "now": at(20)}
    chart = timing(run, [step("a", 0, 5, None, status="started"), step("b", None, None, None)])
    (a,) = chart.bars
    assert (a.run_x, a.run_width) == (25.0, 75.0)
    assert a.label == "15.0 s"


def test_labels_name_retries_and_map_sizes_and_instants_stay_visible() -> None:
    run = {"started_at": at(0), "finished_at": at(100), "now": at(100)}
    chart = timing(
        run,
        [
            step("retried", 0, 30, 40, attempts=3),
            step("fanned", 40, 40, 40, step_type="map", initial_tasks=10_000),
            step("waiting", 50, None, None, status="started"),
        ],
    )
    retried, fanned, waiting = chart.bars
    assert retried.label == "10.0 s · attempt 3"
    assert fanned.label.endswith("10,000 elements") and fanned.run_width > 0
    assert waiting.label == "" and waiting.wait_width == 50.0
