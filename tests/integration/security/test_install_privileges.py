"""Installing as a non-superuser that owns its database, on a private server.

The shared test server already has the pgflow roles, so these tests start a private
embedded Postgres whose cluster has none yet:

* an owner without CREATEROLE installs everything; the installer prints the statements a
  DBA must run (roles and grants); once run, the roles hold exactly the documented
  privileges;
* an owner with CREATEROLE gets the roles created and granted by the installer, and can
  hand pgflow_worker to a login of its own.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from click.testing import CliRunner
from psycopg.rows import dict_row

from pgflow.cli import main
from pgflow.db.schema import install
from tests.integration.security.test_roles import (
    READER_FUNCTIONS,
    WORKER_FUNCTIONS,
    executable,
    table_privileges,
)
from tests.private_postgres import PrivateServer, private_server

DBA_LINE = re.compile(r"^pgflow: ask a DBA to run: (.*;)$")


@pytest.fixture
def server() -> Iterator[PrivateServer]:
    with private_server() as fresh:
        yield fresh


def roles(server: PrivateServer) -> set[str]:
    with psycopg.connect(server.admin_url) as conn:
        rows = conn.execute("select rolname from pg_roles where rolname like 'pgflow_%'")
        return {r[0] for r in rows}


def owned_database(server: PrivateServer, owner: str, options: str = "") -> str:
    server.execute(f"create role {owner} login {options}")
    url = server.create_database(schema=False, owner=owner)
    return psycopg.conninfo.make_conninfo(url, user=owner)


def test_an_owner_without_createrole_installs_and_gets_the_dba_statements(
    server: PrivateServer,
) -> None:
    url = owned_database(server, "app_owner")
    result = install(url)
    assert result.applied and roles(server) == set()
    statements = [m.group(1) for n in result.notices if (m := DBA_LINE.match(n))]
    assert statements[:2] == [
        "create role pgflow_worker nologin;",
        "create role pgflow_reader nologin;",
    ]
    assert any(s.startswith("grant execute on function pgflow.claim_tasks") for s in statements)
    assert len(statements) == len(result.notices) == 8

    with psycopg.connect(url, autocommit=True) as conn:  # the owner can use it all at once
        conn.execute("select pgflow.create_flow('owned')")
        conn.execute("select pgflow.add_step('owned', 'only')")
        conn.execute("select pgflow.start_flow('owned', '{}')")

    dba = psycopg.conninfo.make_conninfo(url, user="postgres")
    with psycopg.connect(dba, autocommit=True) as conn:
        for statement in statements:  # exactly what was printed, nothing more
            conn.execute(statement.encode())
    with psycopg.connect(url, autocommit=True, row_factory=dict_row) as conn:
        assert executable(conn, "pgflow_worker") == WORKER_FUNCTIONS
        assert executable(conn, "pgflow_reader") == READER_FUNCTIONS
        assert all(not held for held in table_privileges(conn, "pgflow_worker").values())
        assert all(held == {"select"} for held in table_privileges(conn, "pgflow_reader").values())


def test_pgflow_install_prints_the_dba_statements(server: PrivateServer) -> None:
    url = owned_database(server, "app_owner")
    result = CliRunner().invoke(main, ["install", "--database-url", url])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert "pgflow: ask a DBA to run: create role pgflow_worker nologin;" in lines
    assert sum(1 for line in lines if DBA_LINE.match(line)) == 8
    assert "pgflow schema installed at version" in result.stdout


def test_an_owner_with_createrole_gets_the_roles_created_and_granted(
    server: PrivateServer,
) -> None:
    url = owned_database(server, "app_admin", "createrole")
    result = install(url)
    assert result.applied and result.notices == ()
    assert roles(server) == {"pgflow_worker", "pgflow_reader"}
    with psycopg.connect(url, autocommit=True, row_factory=dict_row) as conn:
        assert executable(conn, "pgflow_worker") == WORKER_FUNCTIONS
        conn.execute("create role app_worker login in role pgflow_worker")
        member: Any = conn.execute(
            "select pg_has_role('app_worker', 'pgflow_worker', 'member') as ok"
        ).fetchone()
        assert member["ok"] is True
