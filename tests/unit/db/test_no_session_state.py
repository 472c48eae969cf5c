"""pgflow's SQL keeps no session state, so it works through a transaction-pooling PgBouncer.

Through PgBouncer in transaction mode each transaction may run on another server session,
so nothing may outlive a transaction: no session advisory locks, temporary tables,
session-level settings, prepared statements or cursors held across transactions. LISTEN
is the one exception and runs only on the worker's and the client's LISTEN connection
(direct, or ``listen_url``): docs/scaling.md. tests/integration/scaling runs the worker
through a real PgBouncer; this test keeps new SQL from relying on a session.
"""

from __future__ import annotations

import re

import pytest

from pgflow.sql import queries, schema_files

SESSION_STATE = {
    "session advisory lock": re.compile(r"pg_(try_)?advisory_lock(_shared)?\s*\(", re.IGNORECASE),
    "temporary table": re.compile(r"\bcreate\s+(global\s+|local\s+)?temp(orary)?\b", re.IGNORECASE),
    "session setting": re.compile(r"set_config\s*\([^;]*,\s*false\s*\)", re.IGNORECASE),
    "prepared statement": re.compile(r"\bprepare\s+\w+(\s*\([^)]*\))?\s+as\b", re.IGNORECASE),
    "held cursor": re.compile(r"\bwith\s+hold\b", re.IGNORECASE),
}
SESSION_SET = re.compile(r"^\s*set\s+(?!local\b)(session\s+)?\w+", re.IGNORECASE | re.MULTILINE)
LISTEN = re.compile(r"^\s*(un)?listen\b", re.IGNORECASE | re.MULTILINE)
LISTEN_QUERIES = {"listen_tasks", "listen_cancelled", "listen_channel", "unlisten_channel"}


def _without_comments(sql: str) -> str:
    return re.sub(r"--[^\n]*", "", sql)


@pytest.mark.parametrize("name", sorted(queries()))
def test_runtime_queries_keep_no_session_state(name: str) -> None:
    sql = _without_comments(queries()[name])
    for what, pattern in SESSION_STATE.items():
        assert not pattern.search(sql), f"query {name!r} uses a {what}"
    assert not SESSION_SET.search(sql), f"query {name!r} SETs a session setting"
    if name not in LISTEN_QUERIES:
        assert not LISTEN.search(sql), f"query {name!r} LISTENs outside the LISTEN connection"


@pytest.mark.parametrize("file_name", [name for name, _ in schema_files()])
def test_schema_functions_keep_no_session_state(file_name: str) -> None:
    sql = _without_comments(dict(schema_files())[file_name])
    for what, pattern in SESSION_STATE.items():
        assert not pattern.search(sql), f"{file_name} uses a {what}"


@pytest.mark.parametrize(
    "sql",
    [
        "select pg_advisory_lock(1)",
        "select pg_try_advisory_lock_shared(1)",
        "create temp table t (x int)",
        "select set_config('work_mem', '1GB', false)",
        "prepare p as select 1",
        "declare c cursor with hold for select 1",
    ],
)
def test_the_checks_catch_session_state(sql: str) -> None:
    assert any(p.search(sql) for p in SESSION_STATE.values())


def test_the_checks_let_transaction_scoped_state_pass() -> None:
    fine = (
        "select pg_advisory_xact_lock(1); select set_config('work_mem', '64MB', true); "
        "update t set x = 1; set local lock_timeout = '1s'"
    )
    assert not any(p.search(fine) for p in SESSION_STATE.values())
    assert not SESSION_SET.search(fine)
    assert SESSION_SET.search("set statement_timeout = 0")
