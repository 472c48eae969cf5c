"""Completions racing in two transactions: the last one must see what the other committed.

In READ COMMITTED an UPDATE that waited for another transaction's row lock re-checks its
WHERE clause against the newly committed row, but sub-selects in its SET list still read
the snapshot taken when the statement began. Aggregating a map's outputs or a run's leaf
outputs inside the UPDATE that counts the last completion would then miss the output the
other transaction had just committed. These tests hold the first completion open, start
the second one so it waits on the lock, and only then commit the first. (Found by the
fault-injection suite: a map step's aggregated output had a null element.)
"""

from __future__ import annotations

import threading
import time
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from tests.integration.sql.helpers import claim, define, one, run, start, states


def _complete(conn: psycopg.Connection[Any], task: dict[str, Any], output: Any) -> None:
    conn.execute(
        "select pgflow.complete_task(%s, %s, %s, %s, %s)",
        [task["run_id"], task["step_slug"], task["task_index"], Jsonb(output), task["attempt"]],
    )


def _wait_until_blocked(conn: psycopg.Connection[Any], pid: int) -> None:
    """Poll until backend ``pid`` waits on a lock (a readiness wait; bounded generously)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        row = one(conn, "select wait_event_type from pg_stat_activity where pid = %s", pid)
        if row["wait_event_type"] == "Lock":
            return
        time.sleep(0.01)
    raise AssertionError("the second completion never waited on the first one's lock")


def _race(db_url: str, conn: psycopg.Connection[Any], first: Any, second: Any) -> None:
    """Complete ``first`` in an open transaction, ``second`` concurrently, then commit."""
    (t1, o1), (t2, o2) = first, second
    with (
        psycopg.connect(db_url, row_factory=dict_row) as holder,
        psycopg.connect(db_url, autocommit=True, row_factory=dict_row) as racer,
    ):
        _complete(holder, t1, o1)  # transaction left open: its row locks are held
        pid = racer.info.backend_pid
        errors: list[BaseException] = []

        def complete_second() -> None:
            try:
                _complete(racer, t2, o2)
            except BaseException as exc:  # noqa: BLE001 - re-raised in the test thread
                errors.append(exc)

        thread = threading.Thread(target=complete_second)
        thread.start()
        try:
            _wait_until_blocked(conn, pid)
        finally:
            holder.commit()
            thread.join(30)
        assert not errors, errors


def test_racing_last_map_tasks_aggregate_every_output(conn, db_url):
    define(conn, "f", ("m", [], {"step_type": "map"}), ("after", ["m"]))
    r = start(conn, "f", ["x", "y"])
    t0, t1 = sorted(claim(conn, "f"), key=lambda t: t["task_index"])
    _race(db_url, conn, (t0, "X"), (t1, "Y"))
    assert states(conn, r["run_id"])["m"]["output"] == ["X", "Y"]
    (after,) = claim(conn, "f")
    assert after["input"] == {"m": ["X", "Y"]}


def test_racing_last_leaf_steps_both_appear_in_the_run_output(conn, db_url):
    define(conn, "f", ("a", []), ("b", []))
    r = start(conn, "f")
    a, b = sorted(claim(conn, "f"), key=lambda t: t["step_slug"])
    _race(db_url, conn, (a, "A"), (b, "B"))
    final = run(conn, r["run_id"])
    assert final["status"] == "completed"
    assert final["output"] == {"a": "A", "b": "B"}
