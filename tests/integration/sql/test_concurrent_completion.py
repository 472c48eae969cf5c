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
import pytest
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from tests.integration.sql.helpers import claim, define, one, run, start, states


def _complete(conn: psycopg.Connection[Any], task: dict[str, Any], output: Any) -> None:
    conn.execute(
        "select pgflow.complete_task(%s, %s, %s, %s, %s)",
        [task["run_id"], task["step_slug"], task["task_index"], Jsonb(output), task["attempt"]],
    )


def _complete_batch(conn: psycopg.Connection[Any], reports: list[tuple[Any, Any]]) -> None:
    """One complete_tasks of several small outputs: the set-based batch path."""
    conn.execute(
        "select pgflow.complete_tasks(%s, %s, %s, %s::jsonb[], %s)",
        [
            [t["run_id"] for t, _ in reports],
            [t["step_slug"] for t, _ in reports],
            [t["task_index"] for t, _ in reports],
            [Jsonb(o) for _, o in reports],
            [t["attempt"] for t, _ in reports],
        ],
    )


def _report(conn: psycopg.Connection[Any], report: Any) -> None:
    if isinstance(report, list):
        _complete_batch(conn, report)
    else:
        _complete(conn, *report)


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
    """Complete ``first`` in an open transaction, ``second`` concurrently, then commit.

    Each is a (task, output) pair, or a list of them reported in one batch."""
    with (
        psycopg.connect(db_url, row_factory=dict_row) as holder,
        psycopg.connect(db_url, autocommit=True, row_factory=dict_row) as racer,
    ):
        _report(holder, first)  # transaction left open: its row locks are held
        pid = racer.info.backend_pid
        errors: list[BaseException] = []

        def complete_second() -> None:
            try:
                _report(racer, second)
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


def test_racing_batches_aggregate_every_output_of_a_map(conn, db_url):
    define(conn, "f", ("m", [], {"step_type": "map"}), ("after", ["m"]))
    r = start(conn, "f", ["w", "x", "y", "z"])
    t0, t1, t2, t3 = sorted(claim(conn, "f"), key=lambda t: t["task_index"])
    _race(db_url, conn, [(t1, "X"), (t0, "W")], [(t3, "Z"), (t2, "Y")])
    assert states(conn, r["run_id"])["m"]["output"] == ["W", "X", "Y", "Z"]
    (after,) = claim(conn, "f")
    assert after["input"] == {"m": ["W", "X", "Y", "Z"]}


def test_racing_batches_complete_the_run_with_every_leaf(conn, db_url):
    define(conn, "f", ("a", []), ("b", []), ("c", []), ("d", []))
    r = start(conn, "f")
    a, b, c, d = sorted(claim(conn, "f"), key=lambda t: t["step_slug"])
    _race(db_url, conn, [(a, "A"), (c, "C")], [(d, "D"), (b, "B")])
    final = run(conn, r["run_id"])
    assert final["status"] == "completed"
    assert final["output"] == {"a": "A", "b": "B", "c": "C", "d": "D"}


def _input_size(conn: psycopg.Connection[Any], run_id: Any, *steps: str) -> int:
    row = one(
        conn,
        "select sum(coalesce(output_bytes, pg_column_size(output)))::bigint as n"
        " from pgflow.step_states where run_id = %s and step_slug = any(%s)",
        run_id,
        list(steps),
    )
    return int(row["n"])


@pytest.mark.parametrize("batched", [False, True], ids=["one-by-one", "batches"])
def test_racing_last_dependencies_start_the_fan_in_once_with_its_whole_input_size(
    conn, db_url, batched
):
    # the second completion waits for the join's row, then starts the join: the size its
    # task records must count the output the first one committed meanwhile
    define(conn, "f", ("a", []), ("b", []), ("join", ["a", "b"]))
    runs = [start(conn, "f")["run_id"] for _ in range(2)]
    got = {(t["run_id"], t["step_slug"]): t for t in claim(conn, "f")}
    a_out, b_out = "A" * 300, "B" * 600
    if batched:  # each run's a in one batch, each run's b in the other
        raced = runs
        _race(
            db_url, conn, [(got[r, "a"], a_out) for r in runs], [(got[r, "b"], b_out) for r in runs]
        )
    else:
        raced = runs[:1]
        _race(db_url, conn, (got[runs[0], "a"], a_out), (got[runs[0], "b"], b_out))
    claimed = claim(conn, "f")
    assert sorted(t["run_id"] for t in claimed) == sorted(raced)  # one join each
    for run_id in raced:
        joins = [t for t in claimed if t["run_id"] == run_id]
        assert [t["input"] for t in joins] == [{"a": a_out, "b": b_out}]
        task = one(
            conn,
            "select input_bytes from pgflow.step_tasks where run_id = %s and step_slug = 'join'",
            run_id,
        )
        assert task["input_bytes"] == _input_size(conn, run_id, "a", "b") > 900
