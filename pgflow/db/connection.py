"""Connections and pools, all in autocommit mode and without prepared statements.

Every connection pgflow opens is in autocommit mode: each SQL function call is its own
short transaction, and code that needs more opens one explicitly. None keeps session
state (no ``SET``, session advisory locks, temporary tables or server-side prepared
statements: psycopg's ``prepare_threshold`` is off), so every connection works through
PgBouncer in transaction pooling mode; only LISTEN needs a session of its own, which
:func:`behind_pooler` tells apart (docs/scaling.md). Where the database is comes from
:mod:`pgflow.db.target`.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import psycopg
from psycopg import pq
from psycopg.rows import TupleRow
from psycopg_pool import AsyncConnectionPool, ConnectionPool

from pgflow.db.errors import wrap_db_errors
from pgflow.db.target import check_conninfo
from pgflow.sql import query

__all__ = [
    "abehind_pooler",
    "aborrowed",
    "aclosed_mid_query",
    "aconnect",
    "behind_pooler",
    "borrowed",
    "closed_mid_query",
    "connect",
    "in_flight",
    "open_async_pool",
    "open_pool",
]

logger = logging.getLogger(__name__)

APPLICATION_NAME = "pgflow"
PREPARE_THRESHOLD: int | None = None
"""psycopg's ``prepare_threshold`` on pgflow's connections: off, so that no statement is
prepared on a server connection a pooler may hand to another client (PgBouncer before 1.21
does not support protocol-level prepared statements). Measured cost: docs/scaling.md."""


def _connect_kwargs(kwargs: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "autocommit": True,
        "application_name": APPLICATION_NAME,
        "prepare_threshold": PREPARE_THRESHOLD,
        **kwargs,
    }


def _pooled(conn: psycopg.Connection[Any] | psycopg.AsyncConnection[Any], pid: object) -> bool:
    return pid is not None and pid != conn.info.backend_pid


def behind_pooler(conn: psycopg.Connection[Any]) -> bool:
    """Whether ``conn`` reaches Postgres through a connection pooler (PgBouncer and the like).

    A pooler answers the connection handshake itself, with a process id of its own (it
    routes cancel requests), so that id differs from the server process running this
    session's queries. A direct connection, or a TCP proxy that keeps one server session per
    client (HAProxy), shows the same id. One round trip.
    """
    row = conn.execute(query("backend_pid")).fetchone()
    return _pooled(conn, row[0] if row else None)


async def abehind_pooler(conn: psycopg.AsyncConnection[Any]) -> bool:
    """The async twin of :func:`behind_pooler`."""
    row = await (await conn.execute(query("backend_pid"))).fetchone()
    return _pooled(conn, row[0] if row else None)


def connect(conninfo: str, **kwargs: Any) -> psycopg.Connection[TupleRow]:
    """Open a sync autocommit connection (extra keyword arguments go to psycopg).

    Raises:
        DatabaseError: the server cannot be reached (the message names host and database).
        ConfigurationError: authentication failed or the database does not exist.
    """
    check_conninfo(conninfo)
    with wrap_db_errors(conninfo=conninfo):
        return psycopg.Connection.connect(conninfo, **_connect_kwargs(kwargs))


async def aconnect(conninfo: str, **kwargs: Any) -> psycopg.AsyncConnection[TupleRow]:
    """Open an async autocommit connection; errors as for :func:`connect`."""
    check_conninfo(conninfo)
    async with wrap_db_errors(conninfo=conninfo):
        return await psycopg.AsyncConnection.connect(conninfo, **_connect_kwargs(kwargs))


def _newest_first(pool: ConnectionPool | AsyncConnectionPool) -> None:
    """Put the pool's most recently returned idle connection where it lends from next.

    psycopg_pool lends its idle connections first in, first out, so a steady load goes
    round every connection of a pool and spreads its calls over as many server processes,
    which measured more server CPU per call; newest first keeps reusing the same few (+5% to
    +16% Worker throughput, docs/performance.md). Rotating by one moves only that
    connection: the rest keep their order, so the pool still shrinks by its least recently
    used one. Should a psycopg_pool release rename the idle deque, this does nothing and
    the pool lends in its own order (a test pins the order, so CI says so).
    """
    idle = getattr(pool, "_pool", None)
    if isinstance(idle, deque) and len(idle) > 1:
        idle.rotate(1)


class _NewestFirstPool(ConnectionPool):
    """A :class:`ConnectionPool` that lends its most recently returned connection first."""

    def _get_ready_connection(self, timeout: float | None) -> psycopg.Connection[Any] | None:
        _newest_first(self)
        return super()._get_ready_connection(timeout)


class _NewestFirstAsyncPool(AsyncConnectionPool):
    """The async twin of :class:`_NewestFirstPool`."""

    async def _get_ready_connection(
        self, timeout: float | None
    ) -> psycopg.AsyncConnection[Any] | None:
        _newest_first(self)
        return await super()._get_ready_connection(timeout)


def open_pool(
    conninfo: str,
    *,
    min_size: int = 1,
    max_size: int = 10,
    timeout: float = 30.0,
    check: bool = False,
    **kwargs: Any,
) -> ConnectionPool:
    """Open a sync pool of autocommit connections and wait until ``min_size`` are ready.

    The pool lends its most recently returned idle connection first (psycopg_pool's own
    order is the oldest first), so a light load keeps to few, warm server processes.

    Args:
        conninfo: the database URL.
        min_size: connections kept open.
        max_size: the most connections the pool opens.
        timeout: seconds to wait for the first ``min_size`` connections.
        check: test each connection (one empty round trip) before handing it out, so a
            connection a server restart broke is replaced instead of failing the caller.
        **kwargs: passed to each connection (e.g. ``row_factory=dict_row``).

    Raises:
        DatabaseError: no connection could be made within ``timeout`` seconds.
    """
    check_conninfo(conninfo)
    pool: ConnectionPool = _NewestFirstPool(
        conninfo,
        min_size=min_size,
        max_size=max_size,
        kwargs=_connect_kwargs(kwargs),
        name=APPLICATION_NAME,
        open=False,
        check=ConnectionPool.check_connection if check else None,
    )
    try:
        with wrap_db_errors(conninfo=conninfo):
            pool.open(wait=True, timeout=timeout)
    except BaseException:
        pool.close()  # stop its background workers from retrying forever
        raise
    return pool


async def open_async_pool(
    conninfo: str,
    *,
    min_size: int = 1,
    max_size: int = 10,
    timeout: float = 30.0,
    check: bool = False,
    **kwargs: Any,
) -> AsyncConnectionPool:
    """Open an async pool of autocommit connections; see :func:`open_pool`."""
    check_conninfo(conninfo)
    pool: AsyncConnectionPool = _NewestFirstAsyncPool(
        conninfo,
        min_size=min_size,
        max_size=max_size,
        kwargs=_connect_kwargs(kwargs),
        name=APPLICATION_NAME,
        open=False,
        check=AsyncConnectionPool.check_connection if check else None,
    )
    try:
        async with wrap_db_errors(conninfo=conninfo):
            await pool.open(wait=True, timeout=timeout)
    except BaseException:
        await pool.close()
        raise
    return pool


def in_flight(conn: psycopg.Connection[Any] | psycopg.AsyncConnection[Any]) -> bool:
    """Whether a query was sent on ``conn`` and its result is still unread.

    An interrupt (Ctrl+C, a cancelled task) that lands between psycopg sending a query and
    waiting for its result leaves a connection so: nothing more can be sent on it.
    """
    return conn.info.transaction_status == pq.TransactionStatus.ACTIVE


@contextmanager
def closed_mid_query(conn: psycopg.Connection[Any]) -> Iterator[psycopg.Connection[Any]]:
    """``conn`` for the block; closed if an exception leaves it mid-query.

    Without this, whatever closes the connection next (its own ``with``, a pool taking it
    back) first tries a rollback, which fails ("another command is already in progress")
    and logs warnings; a pool then replaces the closed connection quietly.
    """
    try:
        yield conn
    except BaseException:
        if in_flight(conn):
            conn.close()
        raise


@asynccontextmanager
async def aclosed_mid_query(
    conn: psycopg.AsyncConnection[Any],
) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
    """The async twin of :func:`closed_mid_query`."""
    try:
        yield conn
    except BaseException:
        if in_flight(conn):
            await conn.close()
        raise


@contextmanager
def borrowed(pool: ConnectionPool) -> Iterator[psycopg.Connection[Any]]:
    """One of the pool's connections for the block (see :func:`closed_mid_query`).

    Not ``pool.connection()``: it starts a timer inside its ``try`` and reads it in its
    ``finally``, so Ctrl+C landing on the line that starts it turned into
    ``UnboundLocalError`` and hid the interrupt. The connection's own context commits or
    rolls back, as there.
    """
    conn = pool.getconn()
    try:
        with conn, closed_mid_query(conn):
            yield conn
    finally:
        pool.putconn(conn)


@asynccontextmanager
async def aborrowed(pool: AsyncConnectionPool) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
    """The async twin of :func:`borrowed`."""
    async with pool.connection() as conn, aclosed_mid_query(conn):
        yield conn
