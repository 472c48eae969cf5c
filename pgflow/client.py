"""``pgflow.Client`` and ``pgflow.AsyncClient``: start runs and observe them.

The twins have the same methods; the async one awaits them::

    with pgflow.Client() as client:
        run = client.start(flow, {"url": "https://example.com"})
        done = client.wait(run.run_id, timeout=60)     # raises RunFailedError on failure
        print(done.output)

    async with pgflow.AsyncClient(database_url) as client:
        run = await client.start("analyze_website", {"url": "https://example.com"})

A client opens its own small pool from ``database_url`` (resolved like the CLI when None),
or uses the ``connection`` or ``pool`` you pass: with a connection inside a transaction,
``start`` joins your transaction. ``wait`` and ``watch`` LISTEN on the run's channel
``pgflow_run_<run_id>`` before reading its state, so no change is ever missed and no
polling happens; they need an autocommit connection.

Reading never fails because of a value: each stored input and output is decoded on its
own, and one Python cannot decode (nested over 200 levels, a number over 4,300 digits)
reads as ``{"$undecodable": true, "reason": ..., "bytes": N}`` (see :mod:`pgflow._decode`).
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any, Self

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool, ConnectionPool

from pgflow import _client_base as base
from pgflow._decode import decode_for_reading
from pgflow.db.connection import aconnect, connect, open_async_pool, open_pool
from pgflow.db.errors import wrap_db_errors
from pgflow.db.retry import Backoff
from pgflow.db.target import resolve_database
from pgflow.dsl.flow import Flow
from pgflow.errors import ConfigurationError, DatabaseError
from pgflow.models import Run
from pgflow.sql import query

__all__ = ["AsyncClient", "Client"]

RunId = uuid.UUID | str
_POOL_SIZE = 4
_RECONNECT_DELAY = 0.1  # seconds before the first reconnection attempt of watch()

logger = logging.getLogger("pgflow.client")


def _log_reconnect(run_id: uuid.UUID, exc: BaseException) -> None:
    first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    logger.warning(
        "lost the database connection while watching run %s (%s); reconnecting",
        run_id,
        first_line,
        extra={"action": "client_reconnect", "run_id": str(run_id)},
    )


def _autocommit(conn: psycopg.Connection[Any] | psycopg.AsyncConnection[Any]) -> None:
    if not conn.autocommit:
        raise ConfigurationError(
            "waiting for a run needs an autocommit connection: inside a transaction, "
            "Postgres holds notifications back until it commits",
            hint="pass a connection opened with autocommit=True, or a database URL",
        )


class Client:
    """Start, inspect, wait for and cancel runs (blocking I/O).

    Args:
        database_url: the Postgres URL; None resolves it like the CLI does.
        connection: a connection to use instead (not closed by :meth:`close`).
        pool: a pool to use instead (not closed by :meth:`close`).

    Raises:
        ConfigurationError: both ``connection`` and ``pool`` were given.
    """

    def __init__(
        self,
        database_url: str | None = None,
        *,
        connection: psycopg.Connection[Any] | None = None,
        pool: ConnectionPool | None = None,
    ) -> None:
        base.check_source(connection, pool)
        self._database_url = database_url
        self._external = connection
        self._pool = pool
        self._owns_pool = False

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the pool the client opened itself (a no-op otherwise)."""
        if self._owns_pool and self._pool is not None:
            self._pool.close()
            self._pool, self._owns_pool = None, False

    @contextmanager
    def _connection(self) -> Iterator[psycopg.Connection[Any]]:
        if self._external is not None:
            yield self._external
            return
        if self._pool is None:
            url = self._database_url or resolve_database(None).url
            connect(url).close()  # fail at once when unreachable (a pool retries for 30 s)
            self._pool = open_pool(url, min_size=1, max_size=_POOL_SIZE, check=True)
            self._owns_pool = True
        with self._pool.connection() as conn:
            yield conn

    def _one(self, conn: psycopg.Connection[Any], name: str, **params: Any) -> dict[str, Any]:
        with conn.cursor(row_factory=dict_row) as cur:
            decode_for_reading(cur)
            row = cur.execute(query(name), params).fetchone()
        assert row is not None, f"{name} returned no row"
        return row

    def start(self, flow_or_slug: Flow | str, input: Any, run_id: RunId | None = None) -> Run:
        """Start a run; with an existing ``run_id``, return that run (idempotent start).

        Args:
            flow_or_slug: the flow (its input model validates ``input`` first) or a slug.
            input: the run input (a pydantic model or JSON-compatible data).
            run_id: the id to give the run, for idempotent starts.

        Returns:
            The started run (without its steps: use :meth:`get_run` for them).

        Raises:
            InvalidInputError: the input fails the flow's input model (before any SQL).
            UnknownFlowError: no flow with that slug is deployed.
        """
        params = base.start_params(flow_or_slug, input, run_id)
        with wrap_db_errors(), self._connection() as conn:
            return Run.from_row(self._one(conn, "client_start_flow", **params))

    def get_run(self, run_id: RunId) -> Run:
        """Return a run with its steps.

        Raises:
            UnknownRunError: no run has that id.
        """
        rid = base.run_uuid(run_id)
        with wrap_db_errors(), self._connection() as conn:
            return self._fetch(conn, rid)

    def _fetch(self, conn: psycopg.Connection[Any], rid: uuid.UUID) -> Run:
        return base.run_from_row(self._one(conn, "client_get_run", run_id=rid), rid)

    def watch(self, run_id: RunId, timeout: float | None = None) -> Iterator[Run]:
        """Yield the run now and after each change, until it finishes.

        A lost connection (a database restart, say) is replaced and the run read again,
        so no change is missed; only a connection you passed in is not replaced.

        Raises:
            UnknownRunError: no run has that id.
            RunTimeoutError: it is still live after ``timeout`` seconds.
        """
        rid, deadline = base.run_uuid(run_id), base.deadline_after(timeout)
        backoff = Backoff(_RECONNECT_DELAY)
        while True:
            try:
                yield from self._watch(rid, deadline, timeout)
                return
            except DatabaseError as exc:
                if not base.may_reconnect(exc, self._external, deadline):
                    raise
                _log_reconnect(rid, exc)
            time.sleep(backoff.next_delay())

    def _watch(
        self, rid: uuid.UUID, deadline: float | None, timeout: float | None
    ) -> Iterator[Run]:
        listen, unlisten = base.listen_statements(rid)
        with wrap_db_errors(), self._connection() as conn:
            _autocommit(conn)
            conn.execute(listen)
            try:
                while not (run := self._fetch(conn, rid)).is_finished:
                    yield run
                    if not self._next_event(conn, deadline):
                        raise base.timeout_error(run, timeout or 0.0)
                yield run
            finally:
                if not conn.closed:
                    conn.execute(unlisten)

    @staticmethod
    def _next_event(conn: psycopg.Connection[Any], deadline: float | None) -> bool:
        """Wait for the next event of the run; False when the deadline passed first."""
        got = any(True for _ in conn.notifies(timeout=base.remaining(deadline), stop_after=1))
        if got:  # coalesce a burst of events into one re-read
            for _ in conn.notifies(timeout=0):
                pass
        return got

    def wait(self, run_id: RunId, timeout: float | None = None) -> Run:
        """Wait until the run finishes and return it.

        Raises:
            RunFailedError: it failed (carries ``step_slug`` and ``error_message``).
            RunCancelledError: it was cancelled.
            RunTimeoutError: it is still live after ``timeout`` seconds.
            UnknownRunError: no run has that id.
        """
        last: Run | None = None
        for current in self.watch(run_id, timeout):
            last = current
        assert last is not None  # watch() yields at least once
        return last.raise_for_status()

    def cancel(self, run_id: RunId) -> Run:
        """Cancel a live run (a finished one is left as is) and return it.

        Raises:
            UnknownRunError: no run has that id.
        """
        rid = base.run_uuid(run_id)
        with wrap_db_errors(), self._connection() as conn:
            self._one(conn, "client_cancel_run", run_id=rid)
            return self._fetch(conn, rid)

    def runs(
        self, flow_slug: str | None = None, status: str | None = None, limit: int = 50
    ) -> list[Run]:
        """Recent runs, newest first (without their steps).

        Raises:
            InvalidInputError: an unknown status or a limit below 1.
        """
        params = base.list_params(flow_slug, status, limit)
        with wrap_db_errors(), self._connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            decode_for_reading(cur)
            rows = cur.execute(query("client_list_runs"), params).fetchall()
        return [Run.from_row(row) for row in rows]


class AsyncClient:
    """The async twin of :class:`Client`: the same methods, awaited.

    Args:
        database_url: the Postgres URL; None resolves it like the CLI does.
        connection: an async connection to use instead (not closed by :meth:`close`).
        pool: an async pool to use instead (not closed by :meth:`close`).

    Raises:
        ConfigurationError: both ``connection`` and ``pool`` were given.
    """

    def __init__(
        self,
        database_url: str | None = None,
        *,
        connection: psycopg.AsyncConnection[Any] | None = None,
        pool: AsyncConnectionPool | None = None,
    ) -> None:
        base.check_source(connection, pool)
        self._database_url = database_url
        self._external = connection
        self._pool = pool
        self._owns_pool = False

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the pool the client opened itself (a no-op otherwise)."""
        if self._owns_pool and self._pool is not None:
            await self._pool.close()
            self._pool, self._owns_pool = None, False

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        if self._external is not None:
            yield self._external
            return
        if self._pool is None:
            url = self._database_url or resolve_database(None).url
            await (await aconnect(url)).close()  # fail at once when unreachable
            self._pool = await open_async_pool(url, min_size=1, max_size=_POOL_SIZE, check=True)
            self._owns_pool = True
        async with self._pool.connection() as conn:
            yield conn

    async def _one(
        self, conn: psycopg.AsyncConnection[Any], name: str, **params: Any
    ) -> dict[str, Any]:
        async with conn.cursor(row_factory=dict_row) as cur:
            decode_for_reading(cur)
            row = await (await cur.execute(query(name), params)).fetchone()
        assert row is not None, f"{name} returned no row"
        return row

    async def start(self, flow_or_slug: Flow | str, input: Any, run_id: RunId | None = None) -> Run:
        """Start a run; see :meth:`Client.start`."""
        params = base.start_params(flow_or_slug, input, run_id)
        async with wrap_db_errors(), self._connection() as conn:
            return Run.from_row(await self._one(conn, "client_start_flow", **params))

    async def get_run(self, run_id: RunId) -> Run:
        """Return a run with its steps; see :meth:`Client.get_run`."""
        rid = base.run_uuid(run_id)
        async with wrap_db_errors(), self._connection() as conn:
            return await self._fetch(conn, rid)

    async def _fetch(self, conn: psycopg.AsyncConnection[Any], rid: uuid.UUID) -> Run:
        return base.run_from_row(await self._one(conn, "client_get_run", run_id=rid), rid)

    async def watch(self, run_id: RunId, timeout: float | None = None) -> AsyncIterator[Run]:
        """Yield the run now and after each change; see :meth:`Client.watch`."""
        rid, deadline = base.run_uuid(run_id), base.deadline_after(timeout)
        backoff = Backoff(_RECONNECT_DELAY)
        while True:
            try:
                async for run in self._watch(rid, deadline, timeout):
                    yield run
                return
            except DatabaseError as exc:
                if not base.may_reconnect(exc, self._external, deadline):
                    raise
                _log_reconnect(rid, exc)
            await asyncio.sleep(backoff.next_delay())

    async def _watch(
        self, rid: uuid.UUID, deadline: float | None, timeout: float | None
    ) -> AsyncIterator[Run]:
        listen, unlisten = base.listen_statements(rid)
        async with wrap_db_errors(), self._connection() as conn:
            _autocommit(conn)
            await conn.execute(listen)
            try:
                while not (run := await self._fetch(conn, rid)).is_finished:
                    yield run
                    if not await self._next_event(conn, deadline):
                        raise base.timeout_error(run, timeout or 0.0)
                yield run
            finally:
                if not conn.closed:
                    await conn.execute(unlisten)

    @staticmethod
    async def _next_event(conn: psycopg.AsyncConnection[Any], deadline: float | None) -> bool:
        got = False
        async for _ in conn.notifies(timeout=base.remaining(deadline), stop_after=1):
            got = True
        if got:
            async for _ in conn.notifies(timeout=0):
                pass
        return got

    async def wait(self, run_id: RunId, timeout: float | None = None) -> Run:
        """Wait until the run finishes and return it; see :meth:`Client.wait`."""
        last: Run | None = None
        async for current in self.watch(run_id, timeout):
            last = current
        assert last is not None  # watch() yields at least once
        return last.raise_for_status()

    async def cancel(self, run_id: RunId) -> Run:
        """Cancel a live run and return it; see :meth:`Client.cancel`."""
        rid = base.run_uuid(run_id)
        async with wrap_db_errors(), self._connection() as conn:
            await self._one(conn, "client_cancel_run", run_id=rid)
            return await self._fetch(conn, rid)

    async def runs(
        self, flow_slug: str | None = None, status: str | None = None, limit: int = 50
    ) -> list[Run]:
        """Recent runs, newest first; see :meth:`Client.runs`."""
        params = base.list_params(flow_slug, status, limit)
        async with (
            wrap_db_errors(),
            self._connection() as conn,
            conn.cursor(row_factory=dict_row) as cur,
        ):
            decode_for_reading(cur)
            rows = await (await cur.execute(query("client_list_runs"), params)).fetchall()
        return [Run.from_row(row) for row in rows]
