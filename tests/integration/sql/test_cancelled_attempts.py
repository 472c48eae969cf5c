"""cancelled_attempts and the pgflow_cancelled notification: how workers learn that the
tasks their handlers are running were cancelled (docs/workers.md, "Cancellation")."""

from __future__ import annotations

import uuid

import psycopg

from tests.integration.sql.helpers import claim, complete, define, fail, one, q, start


def cancelled_attempts(conn, attempts):
    rows = q(
        conn,
        "select * from pgflow.cancelled_attempts(%s, %s, %s, %s)",
        [a["run_id"] for a in attempts],
        [a["step_slug"] for a in attempts],
        [a["task_index"] for a in attempts],
        [a["attempt"] for a in attempts],
    )
    return {(r["run_id"], r["step_slug"], r["task_index"], r["attempt"]) for r in rows}


def key(attempt):
    return (attempt["run_id"], attempt["step_slug"], attempt["task_index"], attempt["attempt"])


def test_cancelled_attempts_names_the_attempts_that_may_no_longer_run(conn):
    define(conn, "f", ("a", []), ("b", []), base_delay=0)
    doomed = start(conn, "f")["run_id"]
    claimed = claim(conn, "f")
    live = start(conn, "f")["run_id"]
    claimed += claim(conn, "f")
    by_run = {(t["run_id"], t["step_slug"]): t for t in claimed}
    q(conn, "select pgflow.cancel_run(%s)", doomed)
    fail(conn, by_run[live, "b"], "retried")  # back in the queue: attempt 1 may not run on
    superseded = {**by_run[live, "a"], "attempt": 7}  # another attempt holds the lease
    missing = {"run_id": uuid.uuid4(), "step_slug": "a", "task_index": 0, "attempt": 1}
    asked = [*claimed, superseded, missing]
    assert cancelled_attempts(conn, asked) == {
        key(by_run[doomed, "a"]),
        key(by_run[doomed, "b"]),
        key(by_run[live, "b"]),
        key(superseded),
        key(missing),
    }  # the one attempt still running under its lease is not named
    assert cancelled_attempts(conn, []) == set()


def test_the_worker_role_may_call_cancelled_attempts(conn):
    define(conn, "f", ("a", []))
    start(conn, "f")
    (task,) = claim(conn, "f")
    conn.execute("set role pgflow_worker")
    try:
        assert cancelled_attempts(conn, [task]) == set()
    finally:
        conn.execute("reset role")


def _cancelled_notifications(listener: psycopg.Connection) -> list[str]:
    return [n.payload for n in listener.notifies(timeout=0.5) if n.channel == "pgflow_cancelled"]


def test_cancelling_failing_or_skipping_live_tasks_notifies_pgflow_cancelled(conn, db_url):
    define(conn, "f", ("a", []), ("b", []), max_attempts=1)
    define(conn, "m", ("each", [], {"step_type": "map", "when_exhausted": "skip"}), max_attempts=1)
    with psycopg.connect(db_url, autocommit=True) as listener:
        listener.execute("listen pgflow_cancelled")
        cancelled = start(conn, "f")["run_id"]
        claim(conn, "f")
        q(conn, "select pgflow.cancel_run(%s)", cancelled)
        assert _cancelled_notifications(listener) == [str(cancelled)]

        failed = start(conn, "f")["run_id"]
        a, _b = sorted(claim(conn, "f"), key=lambda t: t["step_slug"])
        fail(conn, a)  # no attempts left: the run fails and b, still running, is cancelled
        assert one(conn, "select status from pgflow.runs where run_id = %s", failed) == {
            "status": "failed"
        }
        assert _cancelled_notifications(listener) == [str(failed)]

        skipped = start(conn, "m", [1, 2])["run_id"]
        first, _second = sorted(claim(conn, "m"), key=lambda t: t["task_index"])
        fail(conn, first)  # the step is skipped; its other task is cancelled
        assert _cancelled_notifications(listener) == [str(skipped)]


def test_runs_that_complete_or_were_already_finished_send_nothing(conn, db_url):
    define(conn, "f", ("a", []))
    with psycopg.connect(db_url, autocommit=True) as listener:
        listener.execute("listen pgflow_cancelled")
        done = start(conn, "f")["run_id"]
        complete(conn, claim(conn, "f")[0], 1)
        q(conn, "select pgflow.cancel_run(%s)", done)  # finished: nothing to cancel
        assert _cancelled_notifications(listener) == []
