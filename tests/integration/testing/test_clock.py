"""The test clock: moves time as pgflow's SQL sees it, in the test's database only."""

from __future__ import annotations

import time
import uuid
from datetime import datetime, timedelta
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from pgflow import Client, Context, Flow
from pgflow.errors import PgflowError
from pgflow.testing import DatabaseClock, DatabaseFactory, FlowRunner

HOUR = timedelta(hours=1)


def db_now(conn: psycopg.Connection[Any]) -> datetime:
    row = conn.execute("select pgflow._now() as now").fetchone()
    assert row is not None
    return row["now"]


def test_advance_moves_time_for_connections_opened_before(
    conn: psycopg.Connection[Any], flow_runner: FlowRunner
) -> None:
    before = db_now(conn)  # this connection was opened before the clock was installed
    moved_to = flow_runner.clock.advance(3600)
    after = db_now(conn)
    assert HOUR <= after - before < HOUR + timedelta(seconds=5)
    assert abs(moved_to - after) < timedelta(seconds=5)
    row = conn.execute("select now() as real").fetchone()
    assert row is not None and row["real"] < after - timedelta(minutes=59)  # now() is not moved
    flow_runner.clock.advance(timedelta(minutes=30))
    assert db_now(conn) - before >= HOUR * 1.5


def test_freeze_stops_time_and_unfreeze_resumes_from_there(
    conn: psycopg.Connection[Any], flow_runner: FlowRunner
) -> None:
    clock = flow_runner.clock
    frozen_at = clock.freeze()
    assert clock.read().frozen and clock.read().frozen_at == frozen_at
    time.sleep(0.02)
    assert db_now(conn) == frozen_at == clock.now()
    assert clock.freeze() == frozen_at  # freezing again changes nothing
    assert clock.advance(60) == frozen_at + timedelta(seconds=60)
    assert db_now(conn) == frozen_at + timedelta(seconds=60)
    resumed = clock.unfreeze()
    assert not clock.read().frozen
    assert frozen_at + timedelta(seconds=60) <= resumed < frozen_at + timedelta(seconds=65)
    assert db_now(conn) >= resumed


def test_advance_to_never_goes_back(flow_runner: FlowRunner) -> None:
    clock = flow_runner.clock
    start = clock.freeze()
    assert clock.advance_to(start + HOUR) == start + HOUR
    assert clock.advance_to(start) == start + HOUR
    clock.unfreeze()
    assert clock.advance_to(start + 2 * HOUR) >= start + 2 * HOUR
    assert clock.advance_to(start) >= start + 2 * HOUR


@pytest.mark.parametrize("amount", [-1, timedelta(seconds=-1), float("nan"), "1h", True])
def test_moving_the_clock_back_or_by_nonsense_is_refused(
    flow_runner: FlowRunner, amount: Any
) -> None:
    before = flow_runner.clock.freeze()
    with pytest.raises(PgflowError) as caught:
        flow_runner.clock.advance(amount)
    assert "only moves forward" in str(caught.value) or "number of seconds" in str(caught.value)
    assert caught.value.hint and "advance(" in caught.value.hint
    assert flow_runner.clock.now() == before


def test_the_clock_belongs_to_one_database(
    flow_runner: FlowRunner, pgflow_databases: DatabaseFactory
) -> None:
    flow_runner.clock.advance(timedelta(days=7))
    other = pgflow_databases.create()
    try:
        with psycopg.connect(other, row_factory=dict_row) as conn:
            row = conn.execute("select pgflow._now() - now() as ahead").fetchone()
        assert row == {"ahead": timedelta(0)}
    finally:
        pgflow_databases.drop(other)


def test_a_clock_that_is_not_installed_says_so(db_url: str) -> None:
    clock = DatabaseClock(db_url)
    with pytest.raises(PgflowError, match="not installed") as caught:
        clock.now()
    assert caught.value.hint and "install()" in caught.value.hint
    clock.install()
    clock.install()  # idempotent
    assert abs(clock.now() - datetime.now(clock.now().tzinfo)) < timedelta(minutes=1)
    clock.close()


flaky = Flow("flaky_backoff", max_attempts=4, base_delay=3600)
calls: list[int] = []


@flaky.step()
def fetch(input: dict[str, int], ctx: Context) -> int:
    calls.append(ctx.attempt)
    if ctx.attempt < input["ok_at"]:
        raise ConnectionError(f"down at attempt {ctx.attempt}")
    return ctx.attempt


@flaky.step(depends_on=[fetch], start_delay=86400)
def report(fetch: int) -> str:
    return f"fetched at attempt {fetch}"


def test_three_retries_an_hour_apart_and_a_day_of_delay_take_no_real_time(
    flow_runner: FlowRunner,
) -> None:
    calls.clear()
    started = time.monotonic()
    run = flow_runner.run(flaky, {"ok_at": 4})
    elapsed = time.monotonic() - started
    assert run.output == {"report": "fetched at attempt 4"}
    assert calls == [1, 2, 3, 4]
    assert flow_runner.attempts(run, "fetch") == 4
    assert run.duration is not None and run.duration >= 3 * HOUR + timedelta(days=1)
    fetched, reported = run.step("fetch"), run.step("report")
    assert fetched.completed_at and reported.completed_at
    assert reported.completed_at - fetched.completed_at >= timedelta(days=1)  # start_delay
    assert elapsed < 5.0, f"took {elapsed:.2f}s of real time"  # about 0.3 s when idle


def test_exhausted_retries_fail_the_run_without_waiting(flow_runner: FlowRunner) -> None:
    calls.clear()
    run = flow_runner.run(flaky, {"ok_at": 99}, raise_on_failure=False)
    assert run.status == "failed" and calls == [1, 2, 3, 4]
    assert run.failed_step is not None and run.failed_step.error_message is not None
    assert "down at attempt 4" in run.failed_step.error_message
    assert run.step("report").status == "cancelled"


def test_a_dead_workers_lease_expires_when_the_clock_passes_it(
    flow_runner: FlowRunner, conn: psycopg.Connection[Any]
) -> None:
    flow_runner.deploy(flaky)  # timeout 60 s: a claim is leased for a minute
    with Client(connection=conn) as client:
        run = client.start(flaky, {"ok_at": 1})
    claim = "select * from pgflow.claim_tasks(array['flaky_backoff'], %s, 1)"
    dead = conn.execute(claim, (uuid.uuid4(),)).fetchall()
    assert [t["attempt"] for t in dead] == [1]
    flow_runner.clock.advance(59)
    assert conn.execute(claim, (uuid.uuid4(),)).fetchall() == []  # still leased
    flow_runner.clock.advance(2)
    assert conn.execute(claim, (uuid.uuid4(),)).fetchall() == []  # expired: backoff now
    row = conn.execute(
        "select status, error_type from pgflow.step_tasks where run_id = %s", (run.run_id,)
    ).fetchone()
    assert row == {"status": "queued", "error_type": "LeaseExpired"}
    flow_runner.clock.advance(3600)
    again = conn.execute(claim, (uuid.uuid4(),)).fetchall()
    assert [(t["run_id"], t["attempt"]) for t in again] == [(run.run_id, 2)]
