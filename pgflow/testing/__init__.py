"""pytest support: a real, disposable Postgres database per test.

Enable it in your ``conftest.py``::

    pytest_plugins = ["pgflow.testing"]

Then ask for ``flow_runner`` (runs a flow to completion on the real SQL, with fakes for
single steps and a test clock that skips backoff and delays: docs/testing.md), ``db_url``
(a fresh database with the pgflow schema), ``conn`` / ``aconn`` (autocommit psycopg
connections to it, rows as dicts), ``empty_db_url`` (no schema), or ``pgflow_project`` (a
throw-away project folder for the "no URL configured, so use the embedded server" path).

The server, chosen once per session:

1. ``PGFLOW_TEST_DATABASE_URL`` when set: a role there needs ``CREATEDB``;
2. else a testcontainers Postgres when a Docker engine answers (image from
   ``PGFLOW_TEST_POSTGRES_IMAGE``, default ``postgres:18-alpine``);
3. else an embedded server in a temporary directory, stopped and removed afterwards.

``PGFLOW_TEST_SERVER=embedded`` (or ``docker``) forces a choice. The schema is installed once
into a template database, by the installer from the packaged migrations; each test gets a
clone (``CREATE DATABASE ... TEMPLATE``, milliseconds) that is dropped afterwards.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import psycopg
from psycopg.rows import DictRow, dict_row

try:
    import pytest
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        "pgflow.testing is a pytest plugin and needs pytest: pip install 'pgflow-py[testing]'"
    ) from exc

from pgflow.testing.clock import ClockReading, DatabaseClock
from pgflow.testing.databases import (
    DatabaseFactory,
    DatabaseServer,
    create_database,
    docker_reachable,
    drop_database,
    start_server,
    temporary_project,
    with_database,
)
from pgflow.testing.fakes import with_handlers
from pgflow.testing.results import (
    TaskState,
    assert_skipped,
    attempts,
    map_errors,
    map_outputs,
    step_tasks,
)
from pgflow.testing.runner import FlowRunner

try:  # pytest-asyncio is optional: without it, ``aconn`` is simply not usable.
    from pytest_asyncio import fixture as async_fixture
except ImportError:  # pragma: no cover
    async_fixture = pytest.fixture  # type: ignore[assignment]

__all__ = [
    "ClockReading",
    "DatabaseClock",
    "DatabaseFactory",
    "DatabaseServer",
    "FlowRunner",
    "TaskState",
    "aconn",
    "assert_skipped",
    "attempts",
    "conn",
    "create_database",
    "db_url",
    "docker_reachable",
    "drop_database",
    "empty_db_url",
    "flow_runner",
    "map_errors",
    "map_outputs",
    "pgflow_databases",
    "pgflow_project",
    "pgflow_server",
    "start_server",
    "step_tasks",
    "temporary_project",
    "with_database",
    "with_handlers",
]


@pytest.fixture(scope="session")
def pgflow_server() -> Iterator[DatabaseServer]:
    """The session's Postgres server (see the module docstring for how it is chosen)."""
    with start_server() as server:
        yield server


@pytest.fixture(scope="session")
def pgflow_databases(pgflow_server: DatabaseServer) -> Iterator[DatabaseFactory]:
    """Creates per-test databases; owns the session's template database."""
    factory = DatabaseFactory(pgflow_server)
    yield factory
    factory.close()


@pytest.fixture
def db_url(pgflow_databases: DatabaseFactory) -> Iterator[str]:
    """URL of a fresh database with the pgflow schema installed, dropped after the test."""
    url = pgflow_databases.create()
    yield url
    pgflow_databases.drop(url)


@pytest.fixture
def empty_db_url(pgflow_databases: DatabaseFactory) -> Iterator[str]:
    """URL of a fresh, empty database (no pgflow schema), dropped after the test."""
    url = pgflow_databases.create(schema=False)
    yield url
    pgflow_databases.drop(url)


@pytest.fixture
def pgflow_project(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A throw-away project as the working directory, with no database URL configured.

    ``PGFLOW_DATABASE_URL`` and ``DATABASE_URL`` are unset, so pgflow commands run inside it
    start the embedded server in ``<project>/.pgflow/`` (stopped and deleted afterwards).
    """
    for name in ("PGFLOW_DATABASE_URL", "DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    with temporary_project() as root:
        monkeypatch.chdir(root)
        yield root


@pytest.fixture
def conn(db_url: str) -> Iterator[psycopg.Connection[DictRow]]:
    """A sync autocommit connection to ``db_url``; rows come back as dicts."""
    with psycopg.connect(db_url, autocommit=True, row_factory=dict_row) as connection:
        yield connection


@async_fixture
async def aconn(db_url: str) -> AsyncIterator[psycopg.AsyncConnection[DictRow]]:
    """An async autocommit connection to ``db_url``; rows come back as dicts."""
    connection = await psycopg.AsyncConnection.connect(
        db_url, autocommit=True, row_factory=dict_row
    )
    async with connection:
        yield connection


@pytest.fixture
def flow_runner(db_url: str) -> Iterator[FlowRunner]:
    """Runs flows to completion in ``db_url``, with the database's test clock installed.

    ``flow_runner.run(flow, input, handlers={"step": fake})`` (``await
    flow_runner.arun(...)`` in async tests) returns the finished run; ``flow_runner.clock``
    moves time as pgflow's SQL sees it in this database only (docs/testing.md).
    """
    clock = DatabaseClock(db_url)
    clock.install()
    runner = FlowRunner(db_url, clock=clock)
    try:
        yield runner
    finally:
        runner.close()
