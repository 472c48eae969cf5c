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
``pgflow_run_<run_id>`` and register as its listener (:mod:`pgflow._client_watch`) before
reading its state, so no change is ever missed and no polling happens; they need an
autocommit connection. Through a transaction-pooling
PgBouncer, where LISTEN cannot work, they LISTEN over ``listen_url`` (a direct URL;
default ``PGFLOW_LISTEN_URL``) or, without one, re-read the run every 0.25 s.
``reader_url`` sends ``get_run`` and ``runs`` to a replica (docs/scaling.md).

Large values (docs/large-values.md): a run input over the owner's inline limit is stored
by reference when the run starts (in ``blob_store`` when given, else in Postgres), and a
run read back holds references in place of its large values; ``output(run)`` and
``input(run)`` fetch what they stand for::

    done = client.wait(run.run_id)
    report = client.output(done, "render")     # one step's output, fetched if stored

Reading never fails because of a value: each stored input and output is decoded on its
own, and one Python cannot decode (nested over 200 levels, a number over 4,300 digits)
reads as ``{"$undecodable": true, "reason": ..., "bytes": N}`` (see :mod:`pgflow._decode`).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import datetime, timedelta
from typing import Any, Self

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool, ConnectionPool

from pgflow import _client_base as base
from pgflow import _client_values as values
from pgflow._client_watch import (
    RunWatch,
    aregistered,
    arenew,
    asettle,
    registered,
    renew,
    settle,
)
from pgflow._decode import decode_for_reading
from pgflow.blobs.stores import BlobStore
from pgflow.blobs.values import Limits, Stores, alimits, limits
from pgflow.db.connection import (
    abehind_pooler,
    aborrowed,
    aclosed_mid_query,
    aconnect,
    behind_pooler,
    borrowed,
    closed_mid_query,
    connect,
    open_async_pool,
    open_pool,
)
from pgflow.db.errors import wrap_db_errors
from pgflow.db.retry import Backoff
from pgflow.db.target import configured_listen_url, resolve_database
from pgflow.dsl.flow import Flow
from pgflow.errors import ConfigurationError, DatabaseError
from pgflow.models import Run
from pgflow.sql import query
from pgflow.telemetry.hooks import start_scope

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
        listen_url: a direct Postgres URL for ``wait``/``watch`` when the database URL goes
            through a transaction-pooling PgBouncer (default: ``PGFLOW_LISTEN_URL``).
        reader_url: a replica that ``get_run`` and ``runs`` read from (their results lag
            behind by the replica's replay delay).
        blob_store: an external store for large run inputs, also read from (e.g.
            ``pgflow.blobs.FilesystemStore(path)``, the directory the workers use); None
            keeps them in Postgres (docs/large-values.md).

    Raises:
        ConfigurationError: both ``connection`` and ``pool`` were given, or the store's
            name is invalid.
    """

    def __init__(
        self,
        database_url: str | None = None,
        *,
        connection: psycopg.Connection[Any] | None = None,
        pool: ConnectionPool | None = None,
        listen_url: str | None = None,
        reader_url: str | None = None,
        blob_store: BlobStore | None = None,
    ) -> None:
        base.check_source(connection, pool)
        self._stores = Stores(blob_store)
        self._limits: Limits | None = None
        self._database_url = database_url
        self._external = connection
        self._pool = pool
        self._owns_pool = False
        self._listen_url = listen_url
        self._reader_url = reader_url
        self._reader_pool: ConnectionPool | None = None
        self._pooled: bool | None = None
        self._proxied: bool | None = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the pools the client opened itself (a no-op otherwise)."""
        if self._owns_pool and self._pool is not None:
            self._pool.close()
            self._pool, self._owns_pool = None, False
        if self._reader_pool is not None:
            self._reader_pool.close()
            self._reader_pool = None

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
        with borrowed(self._pool) as conn:
            yield conn

    @contextmanager
    def _reader(self) -> Iterator[psycopg.Connection[Any]]:
        """A connection to the replica (``reader_url``), else as :meth:`_connection`."""
        if self._reader_url is None:
            with self._connection() as conn:
                yield conn
            return
        if self._reader_pool is None:
            connect(self._reader_url).close()  # fail at once when unreachable
            self._reader_pool = open_pool(self._reader_url, max_size=_POOL_SIZE, check=True)
        with borrowed(self._reader_pool) as conn:
            yield conn

    @contextmanager
    def _watcher(self) -> Iterator[tuple[psycopg.Connection[Any], bool]]:
        """The connection ``watch`` reads through, and whether it may LISTEN there."""
        listen_url = configured_listen_url(self._listen_url)
        with self._connection() as conn:
            _autocommit(conn)
            if self._pooled is None:
                self._pooled = behind_pooler(conn)
            if self._is_proxy(conn):  # a PL/Proxy database relays no notifications: poll
                yield conn, False
                return
            if not self._pooled or listen_url is None:
                yield conn, not self._pooled
                return
        with connect(listen_url) as direct, closed_mid_query(direct):
            yield direct, True

    def _one(self, conn: psycopg.Connection[Any], name: str, **params: Any) -> dict[str, Any]:
        with conn.cursor(row_factory=dict_row) as cur:
            decode_for_reading(cur)
            row = cur.execute(query(name), params).fetchone()
        assert row is not None, f"{name} returned no row"
        return row

    def start(
        self,
        flow_or_slug: Flow | str,
        input: Any,
        run_id: RunId | None = None,
        *,
        priority: int | None = None,
    ) -> Run:
        """Start a run; with an existing ``run_id``, return that run (idempotent start).

        Args:
            flow_or_slug: the flow (its input model validates ``input`` first) or a slug
                (the input is checked against the JSON Schema stored with the flow on
                deploy; a flow deployed without one accepts any input).
            input: the run input (a pydantic model or JSON-compatible data).
            run_id: the id to give the run, for idempotent starts.
            priority: -100 to 100, higher first (default: the flow's ``priority``, 0
                unless it was deployed with one; docs/runs.md, "Priorities").

        Returns:
            The started run (without its steps: use :meth:`get_run` for them).

        Raises:
            InvalidInputError: the input fails the flow's input model or stored schema
                (nothing is written; ``errors`` lists every error of a stored schema), or
                the priority is out of range.
            UnknownFlowError: no flow with that slug is deployed.
        """
        params = base.start_params(flow_or_slug, input, run_id, priority)
        scope = start_scope(params["flow_slug"])  # docs/telemetry.md
        with scope, wrap_db_errors(), self._connection() as conn:
            if not isinstance(flow_or_slug, Flow):
                stored = self._one(conn, "client_flow_input_schema", **params)["schema"]
                base.check_start(params, stored)
            limits_of = functools.partial(self._value_limits, conn)
            with values.input_stored(conn, self._stores, params, flow_or_slug, limits_of) as p:
                run = Run.from_row(self._one(conn, "client_start_flow", **base.traced(p, scope)))
            scope.started(run.run_id)
            return run

    def _value_limits(self, conn: psycopg.Connection[Any]) -> Limits:
        if self._limits is None:
            self._limits = limits(conn)
        return self._limits

    def output(self, run: Run | RunId, step_slug: str | None = None) -> Any:
        """A run's output (``{leaf_step: output}``), or one step's, with every value stored
        by reference fetched (``get_run`` returns their references).

        Args:
            run: a run read with its steps (``get_run``, ``wait``), or its id (read here).
            step_slug: one step's output instead of the run's.

        Raises:
            InvalidInputError: the run has no such step.
            ValueStoreError: a store failed, or does not hold a value (ValueMissingError:
                deleted or damaged outside pgflow).
        """
        current = run if isinstance(run, Run) else self.get_run(run)
        value, places = values.output_value(current, step_slug)
        with wrap_db_errors(), self._reader() as conn:
            return values.resolve(conn, self._stores, current.run_id, value, places)

    def input(self, run: Run | RunId) -> Any:
        """A run's input, fetched if it was stored by reference; see :meth:`output`."""
        current = run if isinstance(run, Run) else self.get_run(run)
        value, places = values.input_value(current)
        with wrap_db_errors(), self._reader() as conn:
            return values.resolve(conn, self._stores, current.run_id, value, places)

    def get_run(self, run_id: RunId) -> Run:
        """Return a run with its steps.

        Raises:
            UnknownRunError: no run has that id.
        """
        rid = base.run_uuid(run_id)
        with wrap_db_errors(), self._reader() as conn:
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
        with wrap_db_errors(), self._watcher() as (conn, listening):
            if listening:
                yield from self._listened(conn, rid, deadline, timeout)
            else:
                yield from self._polled(conn, rid, deadline, timeout)

    def _listened(
        self,
        conn: psycopg.Connection[Any],
        rid: uuid.UUID,
        deadline: float | None,
        timeout: float | None,
    ) -> Iterator[Run]:
        listen, unlisten = base.listen_statements(rid)
        _autocommit(conn)
        conn.execute(listen)
        try:
            with registered(conn, rid) as watch:  # notified only once registered
                if watch.polling:
                    yield from self._polled(conn, rid, deadline, timeout)
                    return
                while not (run := self._fetch(conn, rid)).is_finished:
                    yield run
                    if not self._next_event(conn, deadline, watch):
                        raise base.timeout_error(run, timeout or 0.0)
                yield run
        finally:
            settle(conn, unlisten)  # never in place of the exception leaving, if any

    def _polled(
        self,
        conn: psycopg.Connection[Any],
        rid: uuid.UUID,
        deadline: float | None,
        timeout: float | None,
    ) -> Iterator[Run]:
        """Through a pooler without ``listen_url``: re-read the run every 0.25 s."""
        last: Run | None = None
        while True:
            run = self._fetch(conn, rid)
            if run != last:
                yield run
            if run.is_finished:
                return
            last, delay = run, base.poll_delay(deadline)
            if delay is None:
                raise base.timeout_error(run, timeout or 0.0)
            time.sleep(delay)

    @staticmethod
    def _next_event(conn: psycopg.Connection[Any], deadline: float | None, watch: RunWatch) -> bool:
        """Wait for the next event of the run (renewing its registration meanwhile);
        False when the deadline passed first."""
        while True:
            wait = watch.wait_for(base.remaining(deadline))
            if any(True for _ in conn.notifies(timeout=wait, stop_after=1)):
                for _ in conn.notifies(timeout=0):  # coalesce a burst into one re-read
                    pass
                return True
            if base.remaining(deadline) == 0:
                return False
            if watch.due() and renew(conn, watch):
                return True

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

    def retry(self, run_id: RunId) -> Run:
        """Start a failed or cancelled run again where it stopped, and return it.

        Completed steps (and map elements) keep their outputs and are not run again; failed,
        cancelled and never-started steps run with a fresh attempt budget. A live or
        completed run is returned unchanged. See docs/runs.md, "Retrying a run".

        Raises:
            UnknownRunError: no run has that id.
            ShapeMismatchError: the flow's shape changed since the run started.
        """
        rid = base.run_uuid(run_id)
        with wrap_db_errors(), self._connection() as conn:
            self._one(conn, "client_retry_run", run_id=rid)
            return self._fetch(conn, rid)

    def runs(
        self,
        flow_slug: str | None = None,
        status: str | None = None,
        limit: int = 50,
        since: datetime | timedelta | None = None,
    ) -> list[Run]:
        """Recent runs, newest first (without their steps).

        Args:
            flow_slug: only runs of this flow.
            status: only runs in this status.
            limit: at most this many runs.
            since: only runs started at or after this moment (an aware datetime), or
                within this duration before the database server's current time.

        Raises:
            InvalidInputError: an unknown status, a limit below 1 or an invalid ``since``.
        """
        params = base.list_params(flow_slug, status, limit, since)
        with wrap_db_errors(), self._reader() as conn, conn.cursor(row_factory=dict_row) as cur:
            decode_for_reading(cur)
            name = base.list_query(self._is_proxy(conn))
            rows = cur.execute(query(name), params).fetchall()
        return [Run.from_row(row) for row in rows]

    def _is_proxy(self, conn: psycopg.Connection[Any]) -> bool:
        """Whether ``conn`` reaches a pgflow proxy (docs/sharding.md); asked once."""
        if self._proxied is None:
            self._proxied = base.is_proxy(conn.execute(query("proxy_detect")).fetchone())
        return self._proxied


class AsyncClient:
    """The async twin of :class:`Client`: the same methods, awaited.

    Args:
        database_url: the Postgres URL; None resolves it like the CLI does.
        connection: an async connection to use instead (not closed by :meth:`close`).
        pool: an async pool to use instead (not closed by :meth:`close`).
        listen_url: see :class:`Client`.
        reader_url: see :class:`Client`.
        blob_store: see :class:`Client`.

    Raises:
        ConfigurationError: both ``connection`` and ``pool`` were given, or the store's
            name is invalid.
    """

    def __init__(
        self,
        database_url: str | None = None,
        *,
        connection: psycopg.AsyncConnection[Any] | None = None,
        pool: AsyncConnectionPool | None = None,
        listen_url: str | None = None,
        reader_url: str | None = None,
        blob_store: BlobStore | None = None,
    ) -> None:
        base.check_source(connection, pool)
        self._stores = Stores(blob_store)
        self._limits: Limits | None = None
        self._database_url = database_url
        self._external = connection
        self._pool = pool
        self._owns_pool = False
        self._listen_url = listen_url
        self._reader_url = reader_url
        self._reader_pool: AsyncConnectionPool | None = None
        self._pooled: bool | None = None
        self._proxied: bool | None = None

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the pools the client opened itself (a no-op otherwise)."""
        if self._owns_pool and self._pool is not None:
            await self._pool.close()
            self._pool, self._owns_pool = None, False
        if self._reader_pool is not None:
            await self._reader_pool.close()
            self._reader_pool = None

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
        async with aborrowed(self._pool) as conn:
            yield conn

    @asynccontextmanager
    async def _reader(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        """A connection to the replica (``reader_url``), else as :meth:`_connection`."""
        if self._reader_url is None:
            async with self._connection() as conn:
                yield conn
            return
        if self._reader_pool is None:
            await (await aconnect(self._reader_url)).close()  # fail at once when unreachable
            self._reader_pool = await open_async_pool(
                self._reader_url, max_size=_POOL_SIZE, check=True
            )
        async with aborrowed(self._reader_pool) as conn:
            yield conn

    @asynccontextmanager
    async def _watcher(self) -> AsyncIterator[tuple[psycopg.AsyncConnection[Any], bool]]:
        """The connection ``watch`` reads through, and whether it may LISTEN there."""
        listen_url = configured_listen_url(self._listen_url)
        async with self._connection() as conn:
            _autocommit(conn)
            if self._pooled is None:
                self._pooled = await abehind_pooler(conn)
            if await self._is_proxy(conn):  # a PL/Proxy database relays no notifications
                yield conn, False
                return
            if not self._pooled or listen_url is None:
                yield conn, not self._pooled
                return
        async with await aconnect(listen_url) as direct, aclosed_mid_query(direct):
            yield direct, True

    async def _one(
        self, conn: psycopg.AsyncConnection[Any], name: str, **params: Any
    ) -> dict[str, Any]:
        async with conn.cursor(row_factory=dict_row) as cur:
            decode_for_reading(cur)
            row = await (await cur.execute(query(name), params)).fetchone()
        assert row is not None, f"{name} returned no row"
        return row

    async def start(
        self,
        flow_or_slug: Flow | str,
        input: Any,
        run_id: RunId | None = None,
        *,
        priority: int | None = None,
    ) -> Run:
        """Start a run; see :meth:`Client.start`."""
        params = base.start_params(flow_or_slug, input, run_id, priority)
        scope = start_scope(params["flow_slug"])  # docs/telemetry.md
        with scope:
            async with wrap_db_errors(), self._connection() as conn:
                if not isinstance(flow_or_slug, Flow):
                    stored = await self._one(conn, "client_flow_input_schema", **params)
                    base.check_start(params, stored["schema"])
                limits_of = functools.partial(self._value_limits, conn)
                stores = self._stores
                async with values.ainput_stored(conn, stores, params, flow_or_slug, limits_of) as p:
                    row = await self._one(conn, "client_start_flow", **base.traced(p, scope))
                run = Run.from_row(row)
                scope.started(run.run_id)
                return run

    async def _value_limits(self, conn: psycopg.AsyncConnection[Any]) -> Limits:
        if self._limits is None:
            self._limits = await alimits(conn)
        return self._limits

    async def output(self, run: Run | RunId, step_slug: str | None = None) -> Any:
        """A run's output, or one step's, values stored by reference fetched; see
        :meth:`Client.output`."""
        current = run if isinstance(run, Run) else await self.get_run(run)
        value, places = values.output_value(current, step_slug)
        async with wrap_db_errors(), self._reader() as conn:
            return await values.aresolve(conn, self._stores, current.run_id, value, places)

    async def input(self, run: Run | RunId) -> Any:
        """A run's input, fetched if stored by reference; see :meth:`Client.output`."""
        current = run if isinstance(run, Run) else await self.get_run(run)
        value, places = values.input_value(current)
        async with wrap_db_errors(), self._reader() as conn:
            return await values.aresolve(conn, self._stores, current.run_id, value, places)

    async def get_run(self, run_id: RunId) -> Run:
        """Return a run with its steps; see :meth:`Client.get_run`."""
        rid = base.run_uuid(run_id)
        async with wrap_db_errors(), self._reader() as conn:
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
        async with wrap_db_errors(), self._watcher() as (conn, listening):
            watched = self._listened if listening else self._polled
            async for run in watched(conn, rid, deadline, timeout):
                yield run

    async def _listened(
        self,
        conn: psycopg.AsyncConnection[Any],
        rid: uuid.UUID,
        deadline: float | None,
        timeout: float | None,
    ) -> AsyncIterator[Run]:
        listen, unlisten = base.listen_statements(rid)
        _autocommit(conn)
        await conn.execute(listen)
        try:
            async with aregistered(conn, rid) as watch:  # notified only once registered
                if watch.polling:
                    async for run in self._polled(conn, rid, deadline, timeout):
                        yield run
                    return
                while not (run := await self._fetch(conn, rid)).is_finished:
                    yield run
                    if not await self._next_event(conn, deadline, watch):
                        raise base.timeout_error(run, timeout or 0.0)
                yield run
        finally:
            await asettle(conn, unlisten)

    async def _polled(
        self,
        conn: psycopg.AsyncConnection[Any],
        rid: uuid.UUID,
        deadline: float | None,
        timeout: float | None,
    ) -> AsyncIterator[Run]:
        """Through a pooler without ``listen_url``: see :meth:`Client._polled`."""
        last: Run | None = None
        while True:
            run = await self._fetch(conn, rid)
            if run != last:
                yield run
            if run.is_finished:
                return
            last, delay = run, base.poll_delay(deadline)
            if delay is None:
                raise base.timeout_error(run, timeout or 0.0)
            await asyncio.sleep(delay)

    @staticmethod
    async def _next_event(
        conn: psycopg.AsyncConnection[Any], deadline: float | None, watch: RunWatch
    ) -> bool:
        while True:
            got = False
            wait = watch.wait_for(base.remaining(deadline))
            async for _ in conn.notifies(timeout=wait, stop_after=1):
                got = True
            if got:
                async for _ in conn.notifies(timeout=0):
                    pass
                return True
            if base.remaining(deadline) == 0:
                return False
            if watch.due() and await arenew(conn, watch):
                return True

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

    async def retry(self, run_id: RunId) -> Run:
        """Start a failed or cancelled run again; see :meth:`Client.retry`."""
        rid = base.run_uuid(run_id)
        async with wrap_db_errors(), self._connection() as conn:
            await self._one(conn, "client_retry_run", run_id=rid)
            return await self._fetch(conn, rid)

    async def runs(
        self,
        flow_slug: str | None = None,
        status: str | None = None,
        limit: int = 50,
        since: datetime | timedelta | None = None,
    ) -> list[Run]:
        """Recent runs, newest first; see :meth:`Client.runs`."""
        params = base.list_params(flow_slug, status, limit, since)
        async with (
            wrap_db_errors(),
            self._reader() as conn,
            conn.cursor(row_factory=dict_row) as cur,
        ):
            decode_for_reading(cur)
            name = base.list_query(await self._is_proxy(conn))
            rows = await (await cur.execute(query(name), params)).fetchall()
        return [Run.from_row(row) for row in rows]

    async def _is_proxy(self, conn: psycopg.AsyncConnection[Any]) -> bool:
        """Whether ``conn`` reaches a pgflow proxy; see :meth:`Client._is_proxy`."""
        if self._proxied is None:
            row = await (await conn.execute(query("proxy_detect"))).fetchone()
            self._proxied = base.is_proxy(row)
        return self._proxied
