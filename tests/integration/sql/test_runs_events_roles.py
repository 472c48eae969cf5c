"""cancel_run, get_run_with_states, prune, delete_flow_and_data, NOTIFY events, roles."""

from __future__ import annotations

import json
import uuid

import psycopg
import pytest

from tests.integration.sql.helpers import claim, complete, define, drain, one, q, start


def test_cancel_run_terminalises_everything(conn):
    define(conn, "f", ("a", []), ("b", ["a"]))
    r = start(conn, "f")
    (a,) = claim(conn, "f")
    cancelled = one(conn, "select * from pgflow.cancel_run(%s)", r["run_id"])
    assert cancelled["status"] == "cancelled" and cancelled["cancelled_at"] is not None
    assert complete(conn, a, 1)["status"] == "cancelled"
    rows = q(conn, "select status from pgflow.step_states order by step_index")
    assert [x["status"] for x in rows] == ["cancelled", "cancelled"]
    # cancelling again, or a finished run, changes nothing
    assert (
        one(conn, "select status from pgflow.cancel_run(%s)", r["run_id"])["status"] == "cancelled"
    )


def test_cancel_unknown_run(conn):
    with pytest.raises(psycopg.Error) as exc:
        q(conn, "select pgflow.cancel_run(%s)", uuid.uuid4())
    assert exc.value.sqlstate == "PGF07"


def test_get_run_with_states(conn):
    define(conn, "f", ("a", []), ("b", ["a"]), base_delay=0)
    r = start(conn, "f", {"in": 1})
    (_a,) = claim(conn, "f")
    q(conn, "select pgflow.fail_task(%s, 'a', 0, 'oops', 1, 'KeyError', 'tb')", r["run_id"])
    doc = one(conn, "select pgflow.get_run_with_states(%s) as d", r["run_id"])["d"]
    assert doc["run"]["status"] == "started" and doc["run"]["input"] == {"in": 1}
    a_state, b_state = doc["steps"]
    assert a_state["step_slug"] == "a" and a_state["attempts"] == 1
    assert a_state["tasks"] == {"queued": 1}
    assert b_state["status"] == "created" and b_state["tasks"] == {}
    with pytest.raises(psycopg.Error) as exc:
        q(conn, "select pgflow.get_run_with_states(%s)", uuid.uuid4())
    assert exc.value.sqlstate == "PGF07"


def test_prune_removes_only_old_finished_runs(conn):
    define(conn, "f", ("a", []))
    old = start(conn, "f")["run_id"]
    drain(conn, "f", lambda t: 1)
    live = start(conn, "f")["run_id"]
    q(
        conn,
        "update pgflow.runs set started_at = now() - interval '2 days', "
        "finished_at = now() - interval '2 days' where run_id = %s",
        old,
    )
    assert one(conn, "select pgflow.prune('1 day') as n")["n"] == 1
    assert [r["run_id"] for r in q(conn, "select run_id from pgflow.runs")] == [live]
    assert one(conn, "select count(*) as n from pgflow.step_tasks where run_id = %s", old)["n"] == 0


def test_delete_flow_and_data(conn):
    define(conn, "f", ("a", []), ("b", ["a"]))
    define(conn, "keep", ("a", []))
    start(conn, "f")
    start(conn, "keep")
    q(conn, "select pgflow.delete_flow_and_data('f')")
    assert [r["flow_slug"] for r in q(conn, "select flow_slug from pgflow.flows")] == ["keep"]
    assert one(conn, "select count(*) as n from pgflow.step_tasks")["n"] == 1
    q(conn, "select pgflow.delete_flow_and_data('never_existed')")


def test_notify_events(conn, db_url):
    define(conn, "f", ("a", []))
    with psycopg.connect(db_url, autocommit=True) as listener:
        listener.execute("listen pgflow_tasks")
        r = start(conn, "f")
        listener.execute(f'listen "pgflow_run_{r["run_id"]}"')
        # run events go to registered listeners only (0200_function_events.sql)
        listener.execute("select pgflow.watch_run(gen_random_uuid(), %s)", [r["run_id"]])
        task_events = [n.payload for n in listener.notifies(timeout=1, stop_after=1)]
        assert task_events == ["f"]
        complete(conn, claim(conn, "f")[0], "x" * 20000)  # large output is not inlined
        events = [json.loads(n.payload) for n in listener.notifies(timeout=1, stop_after=2)]
    assert [e["event"] for e in events] == ["step:a:completed", "run:completed"]
    assert all(e["run_id"] == str(r["run_id"]) for e in events)


def test_worker_role_can_only_call_worker_functions(conn):
    role = one(conn, "select rolname from pg_roles where rolname = 'pgflow_worker'")
    assert role
    define(conn, "f", ("a", []))
    start(conn, "f")
    conn.execute("set role pgflow_worker")
    try:
        assert len(claim(conn, "f")) == 1
        for stmt in (
            "select * from pgflow.runs",
            "delete from pgflow.step_tasks",
            "select pgflow.start_flow('f', '{}')",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(stmt)
    finally:
        conn.execute("reset role")


def test_reader_role_reads_but_cannot_write(conn):
    conn.execute("set role pgflow_reader")
    try:
        conn.execute("select count(*) from pgflow.runs")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("delete from pgflow.runs")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("select pgflow.claim_tasks('{f}', gen_random_uuid())")
    finally:
        conn.execute("reset role")


def test_every_function_has_a_fixed_search_path(conn):
    rows = q(
        conn,
        """
        select p.proname from pg_proc p join pg_namespace n on n.oid = p.pronamespace
        where n.nspname = 'pgflow'
              and not coalesce(p.proconfig @> array['search_path=pg_catalog, pg_temp'], false)
              -- inlined, hence no SET clause; its body is checked in tests/integration/testing
              and p.oid <> 'pgflow._now()'::regprocedure
    """,
    )
    assert rows == []
