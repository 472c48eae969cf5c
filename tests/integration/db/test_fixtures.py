"""The public pytest fixtures: a fresh cloned database per test, isolated, dropped after."""

from __future__ import annotations

import os
import time
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict

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


def _databases(server: DatabaseServer, prefix: str) -> set[str]:
    with psycopg.connect(server.admin_url) as admin:
        rows = admin.execute(
            "select datname from pg_database where starts_with(datname, %s)", [prefix]
        ).fetchall()
    return {name for (name,) in rows}


def test_a_factory_keeps_a_clone_ready_and_drops_it_on_close(
    pgflow_server: DatabaseServer,
) -> None:
    factory = DatabaseFactory(pgflow_server, spare=1)
    first = factory.create()
    template = factory.template()
    deadline = time.monotonic() + 30
    while len(spares := _databases(pgflow_server, factory.prefix) - {template}) < 2:
        assert time.monotonic() < deadline, "no clone was made ready in 30 s"
        time.sleep(0.05)
    (ready,) = spares - {conninfo_to_dict(first)["dbname"]}
    second = factory.create()
    assert conninfo_to_dict(second)["dbname"] == ready  # made before it was asked for
    with psycopg.connect(second) as conn:  # a clone of the template, like any other
        assert conn.execute("select count(*) from pgflow.flows").fetchone() == (0,)
    factory.drop(first)
    factory.drop(second)
    factory.close()
    assert _databases(pgflow_server, factory.prefix) == set()


def test_a_factory_without_spares_makes_each_clone_on_demand(
    pgflow_server: DatabaseServer,
) -> None:
    factory = DatabaseFactory(pgflow_server, spare=0)
    url = factory.create()
    time.sleep(0.5)  # a filler, if one ran, would have made its clone by now
    assert _databases(pgflow_server, factory.prefix) == {
        factory.template(),
        conninfo_to_dict(url)["dbname"],
    }
    factory.drop(url)
    factory.close()
    assert _databases(pgflow_server, factory.prefix) == set()


def test_docker_probe_is_fast_and_quiet_without_docker(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    assert docker_reachable() is False
    monkeypatch.setenv("DOCKER_HOST", "tcp://127.0.0.1:1")
    assert docker_reachable() is False
