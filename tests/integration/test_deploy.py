"""pgflow.deploy.deploy_flows: create, no-op, options, refusal, --dev recreate."""

from __future__ import annotations

import psycopg
import pytest

from pgflow import Flow
from pgflow.deploy import deploy_flows
from pgflow.errors import ShapeMismatchError


def a(input: dict) -> int:
    return 1


def b(a: int) -> int:
    return a + 1


def diamond(slug: str = "demo", **options: int) -> Flow:
    return Flow(slug, **options).step("a", a).step("b", b, depends_on=["a"])


def scalar(conn: psycopg.Connection, sql: str):
    with conn.cursor(row_factory=psycopg.rows.tuple_row) as cur:
        return cur.execute(sql).fetchone()[0]


count = scalar


def test_new_flow_is_created_then_unchanged(conn):
    (first,) = deploy_flows(conn, [diamond()])
    assert first.action == "created"
    assert first.checksum == scalar(conn, "select pgflow.flow_checksum('demo')")
    (again,) = deploy_flows(conn, [diamond()])
    assert again.action == "unchanged" and again.checksum == first.checksum


def test_changed_options_are_applied_and_reported(conn):
    deploy_flows(conn, [diamond()])
    (result,) = deploy_flows(conn, [diamond(max_attempts=5, timeout=30)])
    assert result.action == "options updated"
    assert "flow.max_attempts 3 -> 5" in result.detail and "flow.timeout 60 -> 30" in result.detail
    assert scalar(conn, "select array[opt_max_attempts, opt_timeout] from pgflow.flows") == [5, 30]


def test_changed_shape_is_refused_and_nothing_changes(conn):
    deploy_flows(conn, [Flow("other").step("x", a)])
    deploy_flows(conn, [diamond()])
    conn.execute("select pgflow.start_flow('demo', '{}')")
    before = scalar(conn, "select pgflow.flow_checksum('demo')")
    changed = (
        Flow("demo").step("a", a).step("b", b, depends_on=["a"]).step("c", b, depends_on=["a"])
    )
    new_flow = Flow("brand_new").step("x", a)
    with pytest.raises(ShapeMismatchError) as exc:
        deploy_flows(conn, [new_flow, changed])
    message = str(exc.value)
    assert "'demo'" in message and before in message
    assert "step 3 ('c') is missing in the deployed" in message
    assert "'demo_v2'" in exc.value.hint
    assert [r.action for r in exc.value.results] == ["unchanged", "refused"]
    assert scalar(conn, "select pgflow.flow_checksum('demo')") == before
    assert count(conn, "select count(*) from pgflow.flows where flow_slug = 'brand_new'") == 0
    assert count(conn, "select count(*) from pgflow.runs") == 1


def test_dev_recreates_a_changed_flow_and_reports_deleted_runs(conn):
    deploy_flows(conn, [diamond()])
    for _ in range(2):
        conn.execute("select pgflow.start_flow('demo', '{}')")
    changed = Flow("demo").step("a", a)
    (result,) = deploy_flows(conn, [changed], dev=True)
    assert result.action == "recreated" and result.runs_deleted == 2
    assert "deleted 2 run(s)" in result.detail
    assert count(conn, "select count(*) from pgflow.runs") == 0
    assert count(conn, "select count(*) from pgflow.steps where flow_slug = 'demo'") == 1


def test_partly_applied_definition_is_finished(conn):
    from pgflow.compiler import compile_flow

    compiled = compile_flow(diamond())
    first_statements = compiled.sql.split(";\n")[:2]  # create_flow + first add_step only
    for statement in first_statements:
        if "pgflow." in statement:
            conn.execute(statement.encode())
    assert scalar(conn, "select status from pgflow.flows") == "defining"
    (result,) = deploy_flows(conn, [diamond()])
    assert result.action == "created" and "partly" in result.detail
    assert scalar(conn, "select status from pgflow.flows") == "ready"
