"""create_flow's tunables input_schema and retention: stored, updated on re-apply, checked."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest
from psycopg.types.json import Jsonb
from pydantic import BaseModel

from pgflow import Flow
from pgflow.deploy import deploy_flows
from tests.integration.sql.helpers import one, q

COMPILED = Path(__file__).resolve().parents[2] / "fixtures" / "compiled"


def _flow(conn: psycopg.Connection, slug: str) -> dict:
    return one(
        conn,
        "select input_schema, retention::text as retention, opt_max_attempts"
        " from pgflow.flows where flow_slug = %s",
        slug,
    )


def test_compiled_sql_stores_the_tunables_and_typescript_style_calls_still_load(conn):
    conn.execute((COMPILED / "fan_out.sql").read_text())
    stored = _flow(conn, "fan_out")
    assert stored["retention"] == "14 days"
    assert stored["input_schema"]["required"] == ["urls"]
    # pgflow's own SQL: positional and named TypeScript parameters, no tunables
    q(conn, "select pgflow.create_flow('ts_flow', 5, 2, 30)")
    q(conn, "select pgflow.create_flow(flow_slug => 'ts_named', max_attempts => 2, timeout => 9)")
    assert _flow(conn, "ts_flow") == {
        "input_schema": None,
        "retention": None,
        "opt_max_attempts": 5,
    }
    assert _flow(conn, "ts_named")["opt_max_attempts"] == 2


def test_re_applying_with_changed_tunables_updates_them_with_a_notice(conn):
    notices: list[str] = []
    conn.add_notice_handler(lambda diag: notices.append(diag.message_primary or ""))
    q(conn, "select pgflow.create_flow('f', retention => '30 days', input_schema => %s)",
      Jsonb({"type": "object"}))  # fmt: skip
    q(conn, "select pgflow.create_flow('f', retention => '7 days', input_schema => %s)",
      Jsonb({"type": "array"}))  # fmt: skip
    assert _flow(conn, "f")["retention"] == "7 days"
    assert _flow(conn, "f")["input_schema"] == {"type": "array"}
    assert "flow 'f': retention updated (30 days -> 7 days)" in notices
    assert "flow 'f': input schema updated" in notices
    q(conn, "select pgflow.create_flow('f')")  # re-applied without them: none any more
    assert _flow(conn, "f") == {"input_schema": None, "retention": None, "opt_max_attempts": 3}
    assert "flow 'f': input schema removed" in notices


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ("input_schema => '[1]'", "input_schema must be a JSON Schema (an object or a boolean)"),
        ("input_schema => '\"x\"'", "got a JSON string"),
        ("retention => '0 seconds'", "retention must be a positive interval, got 00:00:00"),
        ("retention => '-1 day'", "retention must be a positive interval"),
    ],
)
def test_invalid_tunables_are_refused_before_anything_changes(conn, arguments, message):
    q(conn, "select pgflow.create_flow('f', retention => '30 days')")
    with pytest.raises(psycopg.Error) as caught:
        q(conn, f"select pgflow.create_flow('f', {arguments})")
    assert caught.value.sqlstate == "PGF03"
    assert message in caught.value.diag.message_primary
    assert _flow(conn, "f")["retention"] == "30 days"


class In(BaseModel):
    x: int


def test_deploy_reports_changed_tunables(db_url):
    flow = Flow("tuned", input=In, retention="30d").step("a", lambda input: 1)
    with psycopg.connect(db_url, autocommit=True) as conn:
        (created,) = deploy_flows(conn, [flow])
        (same,) = deploy_flows(conn, [flow])
        changed_flow = Flow("tuned", retention="1d").step("a", lambda input: 1)
        (changed,) = deploy_flows(conn, [changed_flow])
    assert (created.action, same.action) == ("created", "unchanged")
    assert changed.action == "options updated"
    assert "flow.retention 30 days -> 1 day" in changed.detail
    assert "flow.input_schema md5:" in changed.detail and "-> none" in changed.detail
    assert changed.checksum == created.checksum
