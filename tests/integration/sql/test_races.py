"""Start, complete, cancel, delete and release racing each other (docs/guarantees.md).

"Deploy, start, cancel and delete are safe under concurrency": no task row outlives its
run, a run never outlives its flow, and after cancel_run commits no task of that run is
handed out. "Leases are fenced by a token that is never reused": a released attempt number
is never handed out again, so the released worker's late report cannot win.

Each race holds the first operation's transaction open, lets the second one run into it
(see tests/integration/races.py), commits, and then checks the end state.
"""

from __future__ import annotations

import uuid
from typing import Any

import psycopg
import pytest

from tests.integration.races import orphans, race
from tests.integration.sql.helpers import (
    claim,
    complete,
    define,
    fail,
    one,
    q,
    run,
    start,
    states,
    tasks,
)

LIVE = ("queued", "started")


def _counts(conn: psycopg.Connection[Any]) -> dict[str, int]:
    return one(
        conn,
        "select (select count(*) from pgflow.flows) as flows,"
        " (select count(*) from pgflow.steps) as steps,"
        " (select count(*) from pgflow.runs) as runs,"
        " (select count(*) from pgflow.step_states) as states,"
        " (select count(*) from pgflow.step_tasks) as tasks",
    )


def _rows_of_flow(conn: psycopg.Connection[Any], flow: str) -> dict[str, int]:
    return one(
        conn,
        "select (select count(*) from pgflow.runs where flow_slug = %s) as runs,"
        " (select count(*) from pgflow.step_states where flow_slug = %s) as states,"
        " (select count(*) from pgflow.step_tasks where flow_slug = %s) as tasks",
        flow,
        flow,
        flow,
    )


def _fan_out(conn: psycopg.Connection[Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Flow f: a -> (b, c), plus a flow g with one queued task; returns f's run and a's task."""
    define(conn, "f", ("a", []), ("b", ["a"]), ("c", ["a"]))
    define(conn, "g", ("x", []))
    start(conn, "g")
    r = start(conn, "f", {"v": 1})
    (a,) = claim(conn, "f")
    return r, a


def _delete(conn: psycopg.Connection[Any], flow: str = "f") -> None:
    conn.execute("select pgflow.delete_flow_and_data(%s)", [flow])


def _cancel(run_id: Any) -> Any:
    return lambda c: one(c, "select * from pgflow.cancel_run(%s)", run_id)


# --- delete_flow_and_data -----------------------------------------------------------------


def test_delete_waits_for_a_completion_and_removes_the_tasks_it_queued(conn, db_url):
    """Completing a root step queues its dependents' tasks in the open transaction; the
    delete racing it must remove those too, or they outlive their run."""
    _r, a = _fan_out(conn)
    race(db_url, lambda c: complete(c, a, "A"), _delete).result()
    assert orphans(conn) == {"tasks": 0, "states": 0}
    assert _rows_of_flow(conn, "f") == {"runs": 0, "states": 0, "tasks": 0}
    before = _counts(conn)
    _delete(conn)  # a second delete is a no-op
    assert _counts(conn) == before
    assert [t["flow_slug"] for t in claim(conn, ["f", "g"])] == ["g"]


def test_delete_racing_an_uncommitted_start_removes_that_run(conn, db_url):
    """A run started while its flow is deleted is deleted with it, never left flow-less."""
    define(conn, "f", ("a", []), ("b", ["a"]))
    define(conn, "g", ("x", []))
    start(conn, "g")
    race(db_url, lambda c: start(c, "f"), _delete).result()
    assert _rows_of_flow(conn, "f") == {"runs": 0, "states": 0, "tasks": 0}
    assert orphans(conn) == {"tasks": 0, "states": 0}
    assert [t["flow_slug"] for t in claim(conn, ["f", "g"])] == ["g"]


def test_start_racing_an_uncommitted_delete_fails_as_unknown_flow(conn, db_url):
    """A start that runs into a delete of its flow sees the flow gone (PGF02), and leaves
    nothing behind; it never starts a run of a flow that no longer exists."""
    define(conn, "f", ("a", []), ("b", ["a"]))
    outcome = race(db_url, _delete, lambda c: start(c, "f"))
    assert isinstance(outcome.error, psycopg.Error), outcome
    assert outcome.error.sqlstate == "PGF02"
    assert _rows_of_flow(conn, "f") == {"runs": 0, "states": 0, "tasks": 0}
    assert claim(conn, "f") == []


# --- cancel_run ---------------------------------------------------------------------------


def test_cancel_racing_an_uncommitted_completion_cancels_the_tasks_it_queued(conn, db_url):
    """The completion queues b and c; after cancel_run commits, neither may be handed out."""
    r, a = _fan_out(conn)
    cancelled = race(db_url, lambda c: complete(c, a, "A"), _cancel(r["run_id"])).result()
    assert cancelled["status"] == "cancelled"
    assert run(conn, r["run_id"])["status"] == "cancelled"
    live = [(t["step_slug"], t["status"]) for t in tasks(conn, r["run_id"]) if t["status"] in LIVE]
    assert live == []
    assert [t["flow_slug"] for t in claim(conn, ["f", "g"])] == ["g"]


def test_completion_racing_an_uncommitted_cancel_changes_nothing(conn, db_url):
    r, a = _fan_out(conn)
    reported = race(db_url, _cancel(r["run_id"]), lambda c: complete(c, a, "A")).result()
    assert reported["status"] == "cancelled" and reported["output"] is None
    assert run(conn, r["run_id"])["status"] == "cancelled"
    assert [t["status"] for t in tasks(conn, r["run_id"])] == ["cancelled"]
    assert [t["flow_slug"] for t in claim(conn, ["f", "g"])] == ["g"]


# --- two batch reports of one task -----------------------------------------------------------


def _batch(keys: list[dict[str, Any]], outputs: list[str]) -> Any:
    """complete_tasks of several small outputs, without attempts (the SQL consumer's form)."""

    def report(conn: psycopg.Connection[Any]) -> list[dict[str, Any]]:
        return q(
            conn,
            "select * from pgflow.complete_tasks(%s, %s, %s, %s::jsonb[])",
            [k["run_id"] for k in keys],
            [k["step_slug"] for k in keys],
            [k["task_index"] for k in keys],
            [f'"{o}"' for o in outputs],
        )

    return report


def test_two_batches_reporting_one_task_complete_it_once_and_the_step_once(conn, db_url):
    """Both batches name task 1 (attempt NULL): the second waits on its row lock, then finds
    it completed and leaves it; task 2 is still its own, and completing it completes the map
    with the first batch's outputs, read after that batch committed."""
    define(conn, "m", ("each", [], {"step_type": "map"}), ("after", ["each"]))
    run_id = start(conn, "m", [0, 1, 2])["run_id"]
    t0, t1, t2 = sorted(claim(conn, "m", 10), key=lambda t: t["task_index"])
    outcome = race(
        db_url,
        _batch([t1, t0], ["first-1", "first-0"]),
        _batch([t2, t1], ["second-2", "second-1"]),
    )
    assert outcome.blocked, "the second batch never waited for the first one's row lock"
    returned = [(r["task_index"], r["status"], r["output"]) for r in outcome.result()]
    assert returned == [(1, "completed", "first-1"), (2, "completed", "second-2")]
    each = states(conn, run_id)["each"]
    assert (each["status"], each["remaining_tasks"]) == ("completed", 0)
    assert each["output"] == ["first-0", "first-1", "second-2"]
    (after,) = claim(conn, "m")  # the dependent was started once
    assert after["step_slug"] == "after"
    assert [t["step_slug"] for t in tasks(conn, run_id)].count("after") == 1


# --- fencing after release_tasks ----------------------------------------------------------


def _task_row(conn: psycopg.Connection[Any]) -> dict[str, Any]:
    return one(
        conn,
        "select status, attempts_count, worker_id, output, error_message, leased_until"
        " from pgflow.step_tasks",
    )


def test_a_released_attempt_number_is_never_handed_out_again(conn):
    define(conn, "f", ("a", []))
    r = start(conn, "f")
    w1, w2, w3 = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    (first,) = claim(conn, "f", worker=w1)
    assert one(conn, "select pgflow.release_tasks(%s) as n", w1)["n"] == 1
    (second,) = claim(conn, "f", worker=w2)
    assert second["attempt"] > first["attempt"], "release handed attempt 1 out again"
    held = _task_row(conn)
    assert held["worker_id"] == w2 and held["attempts_count"] == second["attempt"]

    # W1's late reports, fenced by its own (released) attempt number, change nothing
    complete(conn, first, "late")
    assert _task_row(conn) == held
    fail(conn, first, "late failure")
    assert _task_row(conn) == held

    # and the same after W2 is released in turn: W3 gets yet another number
    assert one(conn, "select pgflow.release_tasks(%s) as n", w2)["n"] == 1
    (third,) = claim(conn, "f", worker=w3)
    assert third["attempt"] > second["attempt"]
    complete(conn, second, "late too")
    assert _task_row(conn)["worker_id"] == w3 and _task_row(conn)["output"] is None

    done = complete(conn, third, "W3")
    assert done["status"] == "completed" and done["output"] == "W3"
    assert run(conn, r["run_id"])["output"] == {"a": "W3"}


# --- rows left behind by an older version -------------------------------------------------


@pytest.fixture
def healthy_run(conn: psycopg.Connection[Any]) -> Any:
    """Flow f (a -> b) with a healthy run, plus orphan rows an older version could leave:
    a run row deleted under its step states and tasks, a task row of a run that never
    existed, and a queued task of a flow that was deleted ('gone')."""
    define(conn, "f", ("a", []), ("b", ["a"]))
    healthy = start(conn, "f")
    lost = start(conn, "f")
    q(conn, "delete from pgflow.runs where run_id = %s", lost["run_id"])
    never = uuid.uuid4()
    q(
        conn,
        "insert into pgflow.step_tasks (run_id, step_slug, task_index, flow_slug)"
        " values (%s, 'a', 0, 'f'), (%s, 'x', 0, 'gone')",
        never,
        never,
    )
    return healthy["run_id"]


def test_claim_skips_orphan_tasks_and_serves_the_others(conn, healthy_run):
    claimed = claim(conn, ["gone", "f"], 10)
    assert [t["run_id"] for t in claimed] == [healthy_run]
    leased = q(conn, "select run_id from pgflow.step_tasks where status = 'started'")
    assert [row["run_id"] for row in leased] == [healthy_run]
    assert claim(conn, ["gone", "f"], 10) == []


def test_delete_flow_and_data_removes_orphan_rows(conn, healthy_run):
    _delete(conn, "f")
    assert _rows_of_flow(conn, "f") == {"runs": 0, "states": 0, "tasks": 0}
    _delete(conn, "gone")  # the flow row is long gone; its task rows are not
    assert _rows_of_flow(conn, "gone") == {"runs": 0, "states": 0, "tasks": 0}
    assert orphans(conn) == {"tasks": 0, "states": 0}
