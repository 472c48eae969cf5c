"""The public pytest fixtures: a fresh cloned database per test, isolated, dropped after."""

from __future__ import annotations

import os
from typing import Any

import psycopg
import pytest

from pgflow.testing import DatabaseFactory, DatabaseServer, docker_reachable

seen_databases: list[str] = []


def test_server_kind_matches_the_environment(pgflow_server: DatabaseServer) -> None:
    assert pgflow_server.kind in ("env", "docker", "embedded")
    if pgflow_server.kind == "embedded":
        assert not docker_reachable() or os.environ.get("PGFLOW_TEST_SERVER") == "embedded"


@pytest.mark.parametrize("attempt", [1, 2])
def test_each_test_gets_its_own_database_with_the_schema(
    conn: psycopg.Connection[Any], attempt: int
) -> None:
    row = conn.execute(
        "select current_database() as db, count(*) as n from pgflow.flows"
    ).fetchone()
    assert row is not None and row["n"] == 0  # nothing leaks from the other attempt
    conn.execute("select pgflow.create_flow('leaky')")
    assert row["db"] not in seen_databases
    seen_databases.append(row["db"])


def test_databases_are_dropped_after_their_test(pgflow_server: DatabaseServer) -> None:
    if not seen_databases:
        pytest.skip("checks the databases of the tests above; run the whole module")
    with psycopg.connect(pgflow_server.admin_url) as admin:
        left = admin.execute(
            "select datname from pg_database where datname = any(%s)", [seen_databases]
        ).fetchall()
    assert left == []


def test_empty_database_has_no_pgflow_schema(empty_db_url: str) -> None:
    with psycopg.connect(empty_db_url) as conn:
        assert conn.execute("select to_regnamespace('pgflow')").fetchone() == (None,)


async def test_async_connection_fixture(aconn: psycopg.AsyncConnection[Any]) -> None:
    cur = await aconn.execute("select count(*) as n from pgflow.runs")
    assert await cur.fetchone() == {"n": 0}


def test_template_is_built_once_per_session(pgflow_databases: DatabaseFactory) -> None:
    assert pgflow_databases.template() == pgflow_databases.template()


def test_docker_probe_is_fast_and_quiet_without_docker(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    assert docker_reachable() is False
    monkeypatch.setenv("DOCKER_HOST", "tcp://127.0.0.1:1")
    assert docker_reachable() is False
