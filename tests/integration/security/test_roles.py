"""The pgflow_worker and pgflow_reader roles: exactly the privileges docs/security.md lists.

Catalog checks cover every function and table (including ones added later: a new
function is executable by nobody until it is listed here and in the grants), and real
login roles prove the grants are enough: a Worker logged in as a pgflow_worker member
runs flows end to end, a pgflow_reader member can inspect runs, and neither can do more.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import uuid
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from pgflow import Client, Context, DatabaseError, Flow, Worker
from pgflow.deploy import deploy_flows
from tests.acceptance import worker_flows
from tests.integration.security.conftest import Login

WORKER_FUNCTIONS = {
    "claim_tasks(text[],uuid,integer,text[])",
    "complete_task(uuid,text,integer,jsonb,integer)",
    "complete_tasks(uuid[],text[],integer[],jsonb[],integer[])",
    "fail_task(uuid,text,integer,text,integer,text,text)",
    "fail_tasks(uuid[],text[],integer[],text[],integer[],text[],text[])",
    "release_tasks(uuid)",
    "register_worker(uuid,text[],text,integer)",
    "heartbeat(uuid)",
    "worker_stopped(uuid)",
    "cancelled_attempts(uuid[],text[],integer[],integer[])",
    "apply_retention(integer)",
    "create_history_partitions(integer)",
    "flow_input_schema(text)",
    "active_schedules(text[])",
    "start_scheduled(text,text,timestamp time zone,boolean)",  # as executable() renders it
    # values stored by reference (docs/large-values.md)
    "value_limits()",
    "put_blob_chunk(uuid,uuid,integer,bytea)",
    "seal_blob(uuid,uuid,bigint,text,text)",
    "read_blob(uuid,uuid,integer,integer)",
    "task_flow_input(uuid,text,integer,integer)",
    "blob_tombstones(text,integer)",
    "forget_blob_tombstones(text,uuid[],uuid[])",
}
# notifications go to registered listeners only (docs/sql-api.md, "Events"): both roles
LISTENER_FUNCTIONS = {
    "listen_tasks(uuid,text[],integer)",
    "watch_run(uuid,uuid,integer)",
    "unwatch(uuid,uuid)",
    "sync_tasks(text[])",
    "sync_run(uuid)",
}
WORKER_FUNCTIONS |= LISTENER_FUNCTIONS
READER_FUNCTIONS = {
    "get_run_with_states(uuid)",
    "get_flow_shape(text)",
    "flow_checksum(text)",
    "is_valid_slug(text)",
    "shape_checksum(jsonb)",
    "flow_input_schema(text)",
    "value_limits()",
    "read_blob(uuid,uuid,integer,integer)",
    "history_partitions()",
    *LISTENER_FUNCTIONS,
}
TABLE_PRIVILEGES = ("select", "insert", "update", "delete", "truncate", "references", "trigger")


def executable(conn: psycopg.Connection[Any], role: str) -> set[str]:
    rows = conn.execute(
        """
        select p.proname || '(' || regexp_replace(
                 pg_get_function_identity_arguments(p.oid), '[a-z_]+ ([a-z\\[\\]]+)', '\\1', 'g')
               || ')' as signature
        from pg_proc p join pg_namespace n on n.oid = p.pronamespace
        where n.nspname = 'pgflow' and has_function_privilege(%s, p.oid, 'execute')
        """,
        [role],
    ).fetchall()
    return {r["signature"].replace(", ", ",") for r in rows}


def table_privileges(conn: psycopg.Connection[Any], role: str) -> dict[str, set[str]]:
    tables = conn.execute(
        "select c.oid, c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace "
        "where n.nspname = 'pgflow' and c.relkind in ('r', 'p', 'v', 'm', 'S')"
    ).fetchall()
    result = {}
    for table in tables:
        held = {
            privilege
            for privilege in TABLE_PRIVILEGES
            if conn.execute(
                "select has_table_privilege(%s, %s::oid, %s) as ok",
                [role, table["oid"], privilege],
            ).fetchone()["ok"]
        }
        result[table["relname"]] = held
    return result


def test_the_worker_role_may_execute_the_worker_functions_and_nothing_else(conn: Any) -> None:
    assert executable(conn, "pgflow_worker") == WORKER_FUNCTIONS
    assert all(not held for held in table_privileges(conn, "pgflow_worker").values())


def test_the_reader_role_may_only_read(conn: Any) -> None:
    assert executable(conn, "pgflow_reader") == READER_FUNCTIONS
    tables = table_privileges(conn, "pgflow_reader")
    assert tables and all(held == {"select"} for held in tables.values()), tables


def test_public_gets_nothing_and_every_function_is_locked_down(conn: Any) -> None:
    assert executable(conn, "public") == set()
    row = conn.execute(
        "select has_schema_privilege('public', 'pgflow', 'usage') as usage, "
        "has_schema_privilege('public', 'pgflow', 'create') as create"
    ).fetchone()
    assert row == {"usage": False, "create": False}
    unsafe = conn.execute(
        """
        select p.proname from pg_proc p join pg_namespace n on n.oid = p.pronamespace
        where n.nspname = 'pgflow' and (
          (not coalesce(p.proconfig @> array['search_path=pg_catalog, pg_temp'], false)
           -- inlined, hence no SET clause; its body is checked in tests/integration/testing
           and p.oid <> 'pgflow._now()'::regprocedure)
          or (p.prosecdef and p.proowner <> (select nspowner from pg_namespace
                                              where nspname = 'pgflow')))
        """
    ).fetchall()
    assert unsafe == []


flow = Flow("secured", max_attempts=2, base_delay=0, timeout=5)


@flow.step()
def greet(input: dict[str, str]) -> str:
    return f"hello {input['name']}"


@flow.step(depends_on=[greet])
def shout(greet: str, ctx: Context) -> str:
    token = ctx.env["PGFLOW_TEST_SECRET"]  # a secret reaches handlers through the env
    return greet.upper() + ("!" if token else "")


def test_a_worker_logged_in_with_only_pgflow_worker_runs_flows(db_url: str, login: Login) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        deploy_flows(conn, [flow], dev=True)
    worker_url = login("pgflow_worker")
    secret = f"s3cr3t-{uuid.uuid4().hex}"
    worker = Worker(
        [flow], worker_url, poll_interval=0.2, retry_base_delay=0, shutdown_grace=5,
        env={**os.environ, "PGFLOW_TEST_SECRET": secret},
    )  # fmt: skip

    async def run_one() -> Any:
        serving = asyncio.create_task(worker.run_async())
        try:
            with Client(db_url) as client:  # the application starts runs with its own role
                run = await asyncio.to_thread(client.start, flow, {"name": "ada"})
                return await asyncio.to_thread(client.wait, run.run_id, 60)
        finally:
            worker.stop()
            await asyncio.wait_for(serving, 30)

    done = asyncio.run(run_one())
    assert done.output == {"shout": "HELLO ADA!"}
    with psycopg.connect(db_url, row_factory=dict_row) as conn:
        stopped = conn.execute(
            "select stopped_at from pgflow.workers where worker_id = %s", [worker.worker_id]
        ).fetchone()
        assert stopped is not None and stopped["stopped_at"] is not None
        everything = conn.execute(
            "select string_agg(t::text, ' ') as text from ("
            " select r::text as t from pgflow.runs r union all"
            " select s::text from pgflow.step_states s union all"
            " select k::text from pgflow.step_tasks k union all"
            " select w::text from pgflow.workers w) x"
        ).fetchone()
    assert secret not in everything["text"]  # the secret never entered the database


def test_the_worker_role_cannot_touch_tables_or_start_flows_unless_granted(
    db_url: str, login: Login
) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        deploy_flows(conn, [flow], dev=True)
    worker_url = login("pgflow_worker")
    with psycopg.connect(worker_url, autocommit=True) as conn:
        for statement in (
            "select * from pgflow.runs",
            "select * from pgflow.step_tasks",
            "update pgflow.step_tasks set status = 'completed'",
            "delete from pgflow.workers",
            "insert into pgflow.flows (flow_slug) values ('x')",
            "select pgflow.start_flow('secured', '{}')",
            "select pgflow.cancel_run(gen_random_uuid())",
            "select pgflow.create_flow('evil')",
            "select pgflow.delete_flow_and_data('secured')",
            "select pgflow.prune('0 seconds')",
            "select pgflow.sweep_expired_tasks()",
            "select pgflow._finish_run(gen_random_uuid(), 'failed', 'x')",
            "create table pgflow.mine (x int)",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(statement)
    with Client(worker_url) as client, pytest.raises(DatabaseError) as caught:
        client.start(flow, {"name": "x"})
    assert "pgflow_worker" in str(caught.value.hint)  # the privilege hint says what to grant
    with psycopg.connect(db_url, autocommit=True) as conn:
        start_flow = "pgflow.start_flow(text, jsonb, uuid, jsonb, int)"
        conn.execute(f"grant execute on function {start_flow} to pgflow_worker")
        try:
            with Client(worker_url) as client:
                assert client.start(flow, {"name": "x"}).status == "started"
        finally:
            conn.execute(f"revoke execute on function {start_flow} from pgflow_worker")


def test_the_reader_role_inspects_runs_and_changes_nothing(db_url: str, login: Login) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        deploy_flows(conn, [flow], dev=True)
    with Client(db_url) as owner:
        run = owner.start(flow, {"name": "x"})
    reader_url = login("pgflow_reader")
    with Client(reader_url) as reader:
        assert reader.get_run(run.run_id).status == "started"
        assert [r.run_id for r in reader.runs()] == [run.run_id]
        with pytest.raises(DatabaseError):
            reader.cancel(run.run_id)
        with pytest.raises(DatabaseError):
            reader.start(flow, {"name": "y"})
    with psycopg.connect(reader_url, autocommit=True) as conn:
        for statement in (
            "delete from pgflow.runs",
            "update pgflow.runs set status = 'completed'",
            "select pgflow.claim_tasks('{secured}', gen_random_uuid())",
            "select pgflow.complete_task(gen_random_uuid(), 'greet', 0, '1')",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(statement)


def test_pgflow_worker_command_runs_as_a_pgflow_worker_member(db_url: str, login: Login) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        deploy_flows(conn, [worker_flows.sleepy], dev=True)
    command = [sys.executable, "-c", "from pgflow.cli import main; main()", "worker"]
    flows_ref = f"{worker_flows.__file__}:sleepy"
    process = subprocess.Popen(
        [*command, flows_ref, "--database-url", login("pgflow_worker"), "--poll-interval", "0.2"],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        with Client(db_url) as client:
            run = client.start("sleepy", {"seconds": 0})
            assert client.wait(run.run_id, timeout=60).status == "completed"
        process.send_signal(signal.SIGTERM)
        assert process.wait(30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(30)
        stderr = process.stderr.read() if process.stderr else ""
        if process.stderr:
            process.stderr.close()
    assert "deployment   not checked: this role may not read pgflow's definitions" in stderr
    assert "warning" not in stderr and "permission denied" not in stderr, stderr
