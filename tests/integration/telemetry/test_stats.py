"""pgflow.telemetry.stats: per-step history statistics over a window of finished tasks."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from pgflow.errors import InvalidInputError, UnknownFlowError
from pgflow.telemetry.stats import step_stats
from tests.integration.telemetry.history import define_pipeline, finished_task


@pytest.fixture
def db(db_url: str) -> Any:
    with psycopg.connect(db_url, autocommit=True) as conn:
        define_pipeline(conn)
        yield conn


def now(conn: psycopg.Connection[Any]) -> datetime:
    row = conn.execute("select now()").fetchone()
    assert row is not None
    return row[0]


def test_percentiles_counts_and_rates_per_step(db: psycopg.Connection[Any]) -> None:
    t = now(db)
    for i in range(1, 101):  # durations 1..100 s, queue waits 0.1..10 s
        finished_task(db, step="fetch", ended=t - timedelta(minutes=i), took=i, waited=i / 10)
    finished_task(db, step="parse", ended=t, took=2, status="failed", attempts=3)
    finished_task(db, step="parse", ended=t, took=4, attempts=2)
    finished_task(db, step="parse", ended=t, took=1000, status="cancelled")
    fetch, parse = step_stats(db, since=timedelta(hours=3))
    assert (fetch.flow_slug, fetch.step_slug) == ("pipeline", "fetch")
    assert (fetch.runs, fetch.tasks, fetch.completed, fetch.failed, fetch.retries) == (
        100, 100, 100, 0, 0,
    )  # fmt: skip
    assert fetch.success_rate == 1.0
    assert fetch.duration_p50 == pytest.approx(50.5)
    assert fetch.duration_p95 == pytest.approx(95.05)
    assert fetch.duration_p99 == pytest.approx(99.01)
    assert fetch.wait_p50 == pytest.approx(5.05)
    assert fetch.wait_p95 == pytest.approx(9.505)
    assert (parse.tasks, parse.completed, parse.failed, parse.cancelled) == (3, 1, 1, 1)
    assert parse.retries == 3  # 2 retries of the failed task, 1 of the completed one
    assert parse.success_rate == 0.5
    assert parse.duration_p50 == pytest.approx(3.0)  # cancelled tasks have no duration


def test_the_window_and_the_flow_filter(db: psycopg.Connection[Any]) -> None:
    define_pipeline(db, "other")
    t = now(db)
    finished_task(db, ended=t - timedelta(hours=2), took=1)
    finished_task(db, ended=t - timedelta(minutes=5), took=3)
    finished_task(db, flow="other", ended=t, took=7)
    recent = step_stats(db, since=timedelta(hours=1))
    assert [(s.flow_slug, s.tasks) for s in recent] == [("other", 1), ("pipeline", 1)]
    (mine,) = step_stats(db, since=timedelta(hours=1), flow_slug="pipeline")
    assert mine.duration_p50 == pytest.approx(3.0)
    (both,) = step_stats(db, since=t - timedelta(hours=3), flow_slug="pipeline")
    assert both.tasks == 2


def test_steps_come_in_definition_order_and_quiet_steps_are_left_out(
    db: psycopg.Connection[Any],
) -> None:
    t = now(db)
    for step in ("save", "fetch"):
        finished_task(db, step=step, ended=t)
    assert [s.step_slug for s in step_stats(db)] == ["fetch", "save"]


def test_to_json_has_the_documented_keys(db: psycopg.Connection[Any]) -> None:
    finished_task(db, ended=now(db), took=2, waited=1)
    (found,) = step_stats(db)
    assert list(found.to_json()) == [
        "flow_slug", "step_slug", "runs", "tasks", "completed", "failed", "cancelled",
        "retries", "success_rate", "duration_p50", "duration_p95", "duration_p99",
        "wait_p50", "wait_p95",
    ]  # fmt: skip


def test_live_tasks_are_not_counted(db: psycopg.Connection[Any]) -> None:
    db.execute(
        "insert into pgflow.step_tasks (run_id, step_slug, flow_slug, status, started_at,"
        " leased_until) values (gen_random_uuid(), 'fetch', 'pipeline', 'started', now(),"
        " now() + interval '1 minute')"
    )
    assert step_stats(db) == []


def test_the_query_walks_the_finished_task_index(db: psycopg.Connection[Any]) -> None:
    """The finish-time expression of the query matches the index's (O(window), not table)."""
    from pgflow.sql import query

    db.execute("set enable_seqscan = off")
    params = {"since_at": None, "since_ago": timedelta(hours=1), "flow_slug": None}
    plan = "\n".join(r[0] for r in db.execute("explain " + query("telemetry_stats"), params))
    # the index of each monthly partition (step_tasks_p202611_finished ...) and the default's
    assert re.search(r"step_tasks_(p\d{6}|default)_finished", plan), plan
    assert "Seq Scan on step_tasks" not in plan


def test_unknown_flow_and_bad_since_are_refused(db: psycopg.Connection[Any]) -> None:
    with pytest.raises(UnknownFlowError, match="'nope'") as caught:
        step_stats(db, flow_slug="nope")
    assert caught.value.hint and "pgflow flows" in caught.value.hint
    with pytest.raises(InvalidInputError, match="timedelta"):
        step_stats(db, since=timedelta(hours=-1))
    with pytest.raises(InvalidInputError):
        step_stats(db, since=datetime(2026, 1, 1))  # naive: which timezone?
    assert step_stats(db, since=datetime(2026, 1, 1, tzinfo=UTC)) == []
