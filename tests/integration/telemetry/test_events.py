"""pgflow.telemetry.events: lifecycle events derived from stored timestamps, replayed and
followed live."""

from __future__ import annotations

import queue
import threading
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import psycopg
import pytest

from pgflow.errors import UnknownFlowError, UnknownRunError
from pgflow.telemetry.events import Event, follow_events, recent_events
from tests.integration.sql.helpers import claim, complete, define, fail, q, start


@pytest.fixture
def db(db_url: str) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(db_url, autocommit=True) as conn:
        define(conn, "pipeline", ("fetch", []), ("parse", ["fetch"]), max_attempts=2,
               base_delay=0)  # fmt: skip
        yield conn


def names(events: list[Event]) -> list[str]:
    return [f"{e.event} {e.step_slug or ''}".strip() for e in events]


def finish(db: psycopg.Connection[Any], flow: str = "pipeline") -> None:
    while tasks := claim(db, flow):
        for task in tasks:
            complete(db, task, {"ok": True})


def test_a_run_with_a_retry_in_order_with_every_field(db: psycopg.Connection[Any]) -> None:
    run_id = start(db, "pipeline")["run_id"]
    worker = uuid.uuid4()
    (first,) = claim(db, "pipeline", worker=worker)
    fail(db, first, "boom\nsecond line")
    finish(db)
    events = recent_events(db, run_id=run_id)
    assert names(events) == [
        "run:started", "step:started fetch", "task:retried fetch", "task:started fetch",
        "task:completed fetch", "step:completed fetch", "step:started parse",
        "task:started parse", "task:completed parse", "step:completed parse", "run:completed",
    ]  # fmt: skip
    assert [e.ts for e in events] == sorted(e.ts for e in events)
    retried = events[2]
    assert (retried.attempt, retried.error_type, retried.error) == (1, "ValueError", "boom")
    started, completed = events[3], events[4]
    assert (started.attempt, started.task_index, completed.attempt) == (2, 0, 2)
    assert completed.duration_ms is not None and completed.duration_ms >= 0
    line = completed.to_json()
    assert line["v"] == 1 and line["event"] == "task:completed" and line["ts"].endswith("Z")
    assert line["run_id"] == str(run_id) and line["flow_slug"] == "pipeline"
    assert list(line) == [
        "v", "ts", "event", "run_id", "flow_slug", "step_slug", "task_index", "attempt",
        "worker_id", "duration_ms", "error_type", "error", "reason",
    ]  # fmt: skip


def test_a_failed_run_shows_the_failure_and_what_was_cancelled(
    db: psycopg.Connection[Any],
) -> None:
    define(db, "fan", ("a", []), ("b", []), max_attempts=1)
    run_id = start(db, "fan")["run_id"]
    a, _b = sorted(claim(db, "fan"), key=lambda t: t["step_slug"])
    fail(db, a, "disk full")
    events = recent_events(db, run_id=run_id)
    tail = names(events)[-5:]
    assert tail[-1] == "run:failed"
    assert {"task:failed a", "step:failed a", "task:cancelled b", "step:cancelled b"} <= set(tail)
    failed = next(e for e in events if e.event == "task:failed")
    assert (failed.error, failed.error_type, failed.attempt) == ("disk full", "ValueError", 1)
    assert events[-1].error and "disk full" in events[-1].error


def test_a_skipped_step_carries_its_reason(db: psycopg.Connection[Any]) -> None:
    define(db, "cond", ("gate", [], {"required_input_pattern": {"go": True}}), ("after", []))
    run_id = start(db, "cond", {"go": False})["run_id"]
    skipped = [e for e in recent_events(db, run_id=run_id) if e.event == "step:skipped"]
    assert len(skipped) == 1 and skipped[0].step_slug == "gate" and skipped[0].reason


def test_limit_keeps_the_newest_and_filters_narrow(db: psycopg.Connection[Any]) -> None:
    define(db, "other", ("x", []))
    first = start(db, "pipeline")["run_id"]
    finish(db)
    second = start(db, "pipeline")["run_id"]
    start(db, "other")
    newest = recent_events(db, limit=2)
    assert names(newest) == ["run:started", "step:started x"]  # the other flow's start
    mine = recent_events(db, flow_slug="pipeline")
    assert {e.run_id for e in mine} == {first, second}
    assert [e.event for e in recent_events(db, run_id=second)] == ["run:started", "step:started"]
    assert recent_events(db, since=timedelta(0)) == []


def test_old_events_are_outside_the_window(db: psycopg.Connection[Any]) -> None:
    run_id = start(db, "pipeline")["run_id"]
    finish(db)
    shift = "started_at = started_at - interval '2h', completed_at = completed_at - interval '2h'"
    for table in ("runs", "step_states", "step_tasks"):
        q(db, f"update pgflow.{table} set {shift} where run_id = %s", run_id)
    assert recent_events(db, since=timedelta(hours=1)) == []
    assert len(recent_events(db, since=timedelta(hours=3))) == 10


def test_unknown_flow_and_run_are_refused(db: psycopg.Connection[Any]) -> None:
    with pytest.raises(UnknownFlowError, match="'nope'"):
        recent_events(db, flow_slug="nope")
    with pytest.raises(UnknownRunError, match="unknown run") as caught:
        recent_events(db, run_id=uuid.uuid4())
    assert caught.value.hint and "pgflow runs" in caught.value.hint
    with pytest.raises(UnknownRunError, match="not-a-uuid"):
        recent_events(db, run_id="not-a-uuid")


def test_follow_prints_new_events_once_as_they_happen(db_url: str, db: Any) -> None:
    earlier = start(db, "pipeline")["run_id"]
    seen: queue.Queue[Event] = queue.Queue()
    stop = threading.Event()

    def follow() -> None:
        with psycopg.connect(db_url, autocommit=True) as conn:
            for event in follow_events(conn, flow_slug="pipeline", poll_interval=0.2):
                seen.put(event)
                if stop.is_set():
                    return

    thread = threading.Thread(target=follow, daemon=True)
    thread.start()
    replayed = [seen.get(timeout=10), seen.get(timeout=10)]
    assert [e.run_id for e in replayed] == [earlier, earlier]
    later = start(db, "pipeline")["run_id"]
    finish(db)
    got: list[Event] = []
    while not any(e.event == "run:completed" and e.run_id == later for e in got):
        got.append(seen.get(timeout=10))
    stop.set()
    keys = [e.key for e in replayed + got]
    assert len(keys) == len(set(keys))  # nothing printed twice
    assert names([e for e in got if e.run_id == later])[:2] == ["run:started", "step:started fetch"]
    start(db, "pipeline")  # wakes the follower once more, so it sees stop and returns
    thread.join(timeout=10)
    assert not thread.is_alive()
