"""One LISTEN connection shared by every browser the viewer serves.

Feeds ask the hub to LISTEN on a channel (``pgflow_run_<run_id>``, ``pgflow_tasks``) with a
callback; the hub holds one autocommit connection, issues ``LISTEN``/``UNLISTEN`` as the
set of wanted channels changes, and calls the callbacks of each notification's channel.
:meth:`Hub.listen` returns once the ``LISTEN`` is in effect, so a feed that reads the state
afterwards misses no change. When the connection is lost the hub reconnects with backoff,
listens again, and tells its status listeners (the pages show a banner meanwhile).

psycopg's ``notifies()`` holds the connection while it waits, so a change of channels
stops the waiting reader (no query is in flight then: the connection stays usable), runs
the ``LISTEN``/``UNLISTEN`` statements and starts reading again.

Transactions notify only registered listeners, so each channel is also registered (and
its barrier run) before :meth:`Hub.listen` returns, renewed while listened to, and
removed with it (:mod:`pgflow.ui.registry`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any, Final

import psycopg
from psycopg import sql

from pgflow.db.connection import aconnect
from pgflow.db.retry import Backoff
from pgflow.errors import PgflowError
from pgflow.sql import query
from pgflow.ui.registry import Registrations

__all__ = ["APPLICATION_NAME", "Hub", "Notice", "StatusListener"]

Notice = Callable[[str, str], None]  # (channel, payload)
StatusListener = Callable[[bool], None]  # connected?
LISTEN_TIMEOUT: Final = 5.0
APPLICATION_NAME: Final = "pgflow ui listen"  # how the connection shows in pg_stat_activity
_OPTIONS: Final[dict[str, Any]] = {
    "application_name": APPLICATION_NAME,
    "keepalives": 1,
    "keepalives_idle": 10,
    "keepalives_interval": 3,
    "keepalives_count": 3,
}

logger = logging.getLogger("pgflow.ui")


class Hub:
    """The shared LISTEN connection (start it with :meth:`start`, inside the event loop)."""

    def __init__(self, conninfo: str, backoff: Backoff | None = None) -> None:
        self._conninfo = conninfo
        self._backoff = backoff or Backoff(0.2, 5.0)
        self._wanted: dict[str, set[Notice]] = {}
        self._status: set[StatusListener] = set()
        self._wake = asyncio.Event()
        self._synced = asyncio.Condition()
        self._requested = 0
        self._done = 0
        self._task: asyncio.Task[None] | None = None
        self._tried = asyncio.Event()
        self._registry = Registrations()
        self.connected = False

    async def start(self) -> None:
        """Start connecting and listening in the background.

        Returns after the first attempt to connect (so the first page does not report the
        database as away while the hub is still connecting), or after a few seconds.
        """
        self._task = asyncio.create_task(self._run(), name="pgflow ui hub")
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(LISTEN_TIMEOUT):
                await self._tried.wait()

    async def stop(self) -> None:
        """Close the connection and stop."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def on_status(self, listener: StatusListener) -> Callable[[], None]:
        """Call ``listener(connected)`` on each change; returns the function that stops it."""
        self._status.add(listener)
        return lambda: self._status.discard(listener)

    async def listen(self, channel: str, notice: Notice) -> None:
        """Call ``notice(channel, payload)`` for each notification on ``channel``.

        Returns once the channel is listened to (or at once while the database is away:
        the hub listens when it reconnects, and status listeners hear about it).
        """
        first = channel not in self._wanted
        self._wanted.setdefault(channel, set()).add(notice)
        if first:
            await self._resync()

    async def unlisten(self, channel: str, notice: Notice) -> None:
        """Stop calling ``notice``; the hub stops listening when nobody wants the channel."""
        notices = self._wanted.get(channel)
        if notices is None:
            return
        notices.discard(notice)
        if not notices:
            del self._wanted[channel]
            await self._resync()

    async def _resync(self) -> None:
        self._requested += 1
        target = self._requested
        self._wake.set()
        if not self.connected:
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(LISTEN_TIMEOUT), self._synced:
                await self._synced.wait_for(lambda: self._done >= target or not self.connected)

    def _set_connected(self, connected: bool) -> None:
        if connected == self.connected:
            return
        self.connected = connected
        for listener in list(self._status):
            listener(connected)

    async def _run(self) -> None:
        while True:
            try:
                conn = await aconnect(self._conninfo, **_OPTIONS)
            except PgflowError as exc:
                logger.debug("cannot connect for LISTEN: %s", exc)
                self._tried.set()
            else:
                await self._serve_until_lost(conn)
            await asyncio.sleep(self._backoff.next_delay())

    async def _serve_until_lost(self, conn: psycopg.AsyncConnection[Any]) -> None:
        try:
            await self._serve(conn)
        except psycopg.Error as exc:
            logger.warning("lost the LISTEN connection (%s); reconnecting", exc)
        finally:
            await self._lost()
            with contextlib.suppress(psycopg.Error):
                await conn.close()

    async def _lost(self) -> None:
        self._set_connected(False)
        async with self._synced:
            self._synced.notify_all()

    async def _serve(self, conn: psycopg.AsyncConnection[Any]) -> None:
        listening: set[str] = set()
        while True:
            self._wake.clear()
            requested = self._requested
            listening = await self._sync(conn, listening)
            self._backoff.reset()
            self._set_connected(True)
            self._tried.set()
            async with self._synced:
                self._done = requested
                self._synced.notify_all()
            if self._requested == requested:
                await self._read_until_woken(conn)

    async def _sync(self, conn: psycopg.AsyncConnection[Any], listening: set[str]) -> set[str]:
        wanted = set(self._wanted)
        added = sorted(wanted - listening)
        for channel in added:
            await conn.execute(_statement("listen_channel", channel))
        for channel in sorted(listening - wanted):
            await conn.execute(_statement("unlisten_channel", channel))
            await self._registry.forget(conn, channel)
        renew = self._registry.due()
        channels = sorted(wanted) if renew else added
        lapsed = await self._registry.register(conn, channels, renew=renew)
        for channel in sorted(lapsed - set(added)):  # notifications may have been skipped
            self._deliver(channel, "")
        return wanted

    async def _read_until_woken(self, conn: psycopg.AsyncConnection[Any]) -> None:
        reader = asyncio.create_task(self._read(conn))
        waker = asyncio.create_task(self._wake.wait())
        try:  # until woken, or until the registrations are due for renewal
            await asyncio.wait(
                {reader, waker},
                timeout=self._registry.wait_for(),
                return_when=asyncio.FIRST_COMPLETED,
            )
        finally:
            reader.cancel()
            waker.cancel()
            await asyncio.gather(reader, waker, return_exceptions=True)
        error = None if reader.cancelled() else reader.exception()
        if error is not None:
            raise error  # the connection failed

    async def _read(self, conn: psycopg.AsyncConnection[Any]) -> None:
        async for note in conn.notifies():
            self._deliver(note.channel, note.payload)

    def _deliver(self, channel: str, payload: str) -> None:
        for notice in list(self._wanted.get(channel, ())):
            try:
                notice(channel, payload)
            except Exception:
                logger.exception("a notification handler failed")


def _statement(name: str, channel: str) -> sql.Composed:
    return sql.SQL(query(name)).format(channel=sql.Identifier(channel))
