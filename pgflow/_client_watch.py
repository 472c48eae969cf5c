"""The registration behind ``Client.wait``/``watch``: the run's events are notified only then.

Transactions notify ``pgflow_run_<run_id>`` only while a listener is registered for the run
in ``pgflow.listeners`` (docs/sql-api.md, "Events"). After its ``LISTEN``, a watch
therefore registers (``watch_run``, committed), runs the barrier (``sync_run``) and only
then reads the run, so no change is ever missed; it renews the registration every
:data:`RENEW` seconds while it waits, and removes it at the end (``unwatch``).

A renewal that finds the registration lapsed (the process stalled past :data:`TTL`), or a
barrier that gave up on a transaction holding the run's key, asks for one more barrier and
read (``stale``) a moment later. A role without ``EXECUTE`` on ``watch_run`` cannot
register: its watches re-read the run every 0.25 s instead (``polling``). A schema older
than registration notifies every change, so there the watch just listens.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager, suppress
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import errors

from pgflow.db.connection import in_flight
from pgflow.sql import query

__all__ = [
    "RENEW",
    "TTL",
    "RunWatch",
    "aregistered",
    "arenew",
    "asettle",
    "registered",
    "renew",
    "settle",
]

TTL = 60
"""Seconds a registration lives unless renewed."""
RENEW = 20.0
"""Seconds between renewals while a watch waits."""
RETRY = 0.25
"""Seconds before the barrier is tried again after it gave up."""

logger = logging.getLogger("pgflow.client")
_warned: set[str] = set()


@dataclass(slots=True)
class RunWatch:
    """One watch's registration.

    Attributes:
        run_id: the watched run.
        listener_id: the id it is registered under (``pgflow.listeners``).
        registered: a row was written (removed at the end).
        polling: it cannot register: re-read the run on a timer instead.
        stale: a barrier is owed (a lapse, or a barrier that gave up): renew soon.
        renew_at: the monotonic time of the next renewal.
    """

    run_id: uuid.UUID
    listener_id: uuid.UUID = field(default_factory=uuid.uuid4)
    registered: bool = False
    polling: bool = False
    stale: bool = False
    renew_at: float = 0.0

    def params(self) -> dict[str, Any]:
        """The parameters of ``listener_watch_run``."""
        return {"listener_id": self.listener_id, "run_id": self.run_id, "ttl_seconds": TTL}

    def wait_for(self, left: float | None) -> float | None:
        """How long to wait for a notification: until the deadline or the next renewal."""
        if not self.registered:
            return left
        until_renewal = max(0.0, self.renew_at - time.monotonic())
        return until_renewal if left is None else min(left, until_renewal)

    def due(self) -> bool:
        """Whether the renewal is due."""
        return self.registered and time.monotonic() >= self.renew_at

    def renewed(self, live: bool, synced: bool | None) -> bool:
        """Record a registration (and barrier); True when the run must be read again."""
        self.registered = True
        reread = not live or self.stale
        if synced is not None:
            self.stale = not synced
        self.renew_at = time.monotonic() + (RETRY if self.stale else RENEW)
        return reread


def _refused(exc: psycopg.Error) -> None:
    if "privilege" not in _warned:
        _warned.add("privilege")
        logger.warning(
            "this role may not register run listeners (%s): wait and watch re-read runs "
            "every 0.25 s; grant pgflow_reader or EXECUTE on pgflow.watch_run and "
            "pgflow.sync_run (docs/sql-api.md, Roles)",
            str(exc).strip().splitlines()[0],
            extra={"action": "watch_polling"},
        )


def _scalar(cur: psycopg.Cursor[Any]) -> bool:
    row = cur.fetchone()
    return bool(row and row[0])


async def _ascalar(cur: psycopg.AsyncCursor[Any]) -> bool:
    row = await cur.fetchone()
    return bool(row and row[0])


def renew(conn: psycopg.Connection[Any], watch: RunWatch) -> bool:
    """Register or renew, with the barrier when owed; True when the run must be read again."""
    live = _scalar(conn.execute(query("listener_watch_run"), watch.params()))
    synced = None
    if not live or watch.stale:
        synced = _scalar(conn.execute(query("listener_sync_run"), {"run_id": watch.run_id}))
    return watch.renewed(live, synced)


async def arenew(conn: psycopg.AsyncConnection[Any], watch: RunWatch) -> bool:
    """The async twin of :func:`renew`."""
    live = await _ascalar(await conn.execute(query("listener_watch_run"), watch.params()))
    synced = None
    if not live or watch.stale:
        cur = await conn.execute(query("listener_sync_run"), {"run_id": watch.run_id})
        synced = await _ascalar(cur)
    return watch.renewed(live, synced)


@contextmanager
def registered(conn: psycopg.Connection[Any], run_id: uuid.UUID) -> Iterator[RunWatch]:
    """Register a watch of ``run_id`` on ``conn`` (already LISTENing) for the ``with`` block."""
    watch = RunWatch(run_id)
    try:
        renew(conn, watch)
    except errors.UndefinedFunction:
        pass  # a schema older than registration: it notifies every change
    except errors.InsufficientPrivilege as exc:
        _refused(exc)
        watch.polling = True
    try:
        yield watch
    finally:
        if watch.registered:  # it expires anyway if this fails
            settle(conn, query("listener_unwatch"), {**watch.params(), "run_id": None})


@asynccontextmanager
async def aregistered(
    conn: psycopg.AsyncConnection[Any], run_id: uuid.UUID
) -> AsyncIterator[RunWatch]:
    """The async twin of :func:`registered`."""
    watch = RunWatch(run_id)
    try:
        await arenew(conn, watch)
    except errors.UndefinedFunction:
        pass
    except errors.InsufficientPrivilege as exc:
        _refused(exc)
        watch.polling = True
    try:
        yield watch
    finally:
        if watch.registered:
            await asettle(conn, query("listener_unwatch"), {**watch.params(), "run_id": None})


def settle(conn: psycopg.Connection[Any], statement: Any, params: Any = None) -> None:
    """A watch's clean-up statement (``UNLISTEN``, removing its registration).

    It runs in ``finally`` blocks, often while an exception (an interrupt, a timeout)
    leaves: its own failure must never replace that one, which ``watch`` would take for a
    lost connection and wait on. Nothing is sent on a connection that is closed or that an
    interrupt left mid-query (:func:`~pgflow.db.connection.in_flight`).
    """
    if conn.closed or in_flight(conn):
        return
    with suppress(psycopg.Error):
        conn.execute(statement, params)


async def asettle(conn: psycopg.AsyncConnection[Any], statement: Any, params: Any = None) -> None:
    """The async twin of :func:`settle`."""
    if conn.closed or in_flight(conn):
        return
    with suppress(psycopg.Error):
        await conn.execute(statement, params)
