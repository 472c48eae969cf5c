"""The viewer's listener registrations: transactions notify only registered listeners.

A run's events are notified on ``pgflow_run_<run_id>`` only while a listener is registered
for the run, and ``pgflow_tasks`` only while a task listener waits (``pgflow.listeners``,
docs/sql-api.md, "Events"). The :class:`~pgflow.ui.hub.Hub` therefore registers each
channel it LISTENs on, over its own connection, right after the ``LISTEN``: the run
channels under one listener id (``watch_run``), ``pgflow_tasks`` for every flow under
another (``listen_tasks``, which stays waiting: the viewer never claims). Then it runs the
barrier (``sync_run``/``sync_tasks``), so the feed's read that follows misses nothing.
Registrations are renewed every :data:`RENEW` seconds and removed with the channel; a
renewal that finds one lapsed runs the barrier again and reports the channel, whose feeds
then refresh. A role that may not register (or a schema without registration) is told
once in the log; the feeds' periodic refresh covers it.
"""

from __future__ import annotations

import logging
import time
import uuid
from typing import Any, Final

import psycopg
from psycopg import errors

from pgflow.sql import query

__all__ = ["RENEW", "TTL", "Registrations"]

TTL: Final = 60  # seconds a registration lives unless renewed
RENEW: Final = 20.0  # seconds between renewals
_SYNC_ALL: Final = 4  # more run barriers than this: one barrier over every run instead
_RUN_PREFIX: Final = "pgflow_run_"
_TASKS: Final = "pgflow_tasks"
logger = logging.getLogger("pgflow.ui")

Connection = psycopg.AsyncConnection[Any]


def _run_id(channel: str) -> uuid.UUID | None:
    if not channel.startswith(_RUN_PREFIX):
        return None
    try:
        return uuid.UUID(channel.removeprefix(_RUN_PREFIX))
    except ValueError:
        return None


class Registrations:
    """The hub's registrations (one listener id for runs, one for tasks)."""

    def __init__(self) -> None:
        self._runs_id = uuid.uuid4()
        self._tasks_id = uuid.uuid4()
        self._renew_at = 0.0
        self.enabled = True

    def wait_for(self) -> float | None:
        """Seconds until the next renewal (None: never)."""
        return max(0.0, self._renew_at - time.monotonic()) if self.enabled else None

    def due(self) -> bool:
        """Whether the renewal is due."""
        return self.enabled and time.monotonic() >= self._renew_at

    async def register(self, conn: Connection, channels: list[str], *, renew: bool) -> set[str]:
        """Register ``channels`` (already LISTENed), then run the barrier of those whose
        registration was not live; returns those. With ``renew``, restart the renewal clock.

        Raises:
            psycopg.Error: the connection failed (the hub reconnects).
        """
        if not self.enabled or not channels:
            return set()
        try:
            lapsed = {c for c in channels if not await self._register(conn, c)}
            await self._sync(conn, sorted(lapsed))
        except (errors.InsufficientPrivilege, errors.UndefinedFunction) as exc:
            self.enabled = False
            logger.warning(
                "the viewer cannot register as a listener (%s): its live views refresh on "
                "their timer only (grant pgflow_reader; docs/sql-api.md, Roles)",
                str(exc).strip().splitlines()[0],
            )
            return set()
        if renew:
            self._renew_at = time.monotonic() + RENEW
        return lapsed

    async def forget(self, conn: Connection, channel: str) -> None:
        """Remove the registration of a channel no longer listened to."""
        if not self.enabled:
            return
        run_id = _run_id(channel)
        params: dict[str, uuid.UUID | None]
        if run_id is not None:
            params = {"listener_id": self._runs_id, "run_id": run_id}
        elif channel == _TASKS:
            params = {"listener_id": self._tasks_id, "run_id": None}
        else:
            return
        await conn.execute(query("listener_unwatch"), params)

    async def _register(self, conn: Connection, channel: str) -> bool:
        run_id = _run_id(channel)
        if run_id is not None:
            params = {"listener_id": self._runs_id, "run_id": run_id, "ttl_seconds": TTL}
            cur = await conn.execute(query("listener_watch_run"), params)
        elif channel == _TASKS:
            params = {"listener_id": self._tasks_id, "flow_slugs": None, "ttl_seconds": TTL}
            cur = await conn.execute(query("listener_listen_tasks"), params)
        else:
            return True  # nothing to register (pgflow_cancelled is always notified)
        row = await cur.fetchone()
        return bool(row and row[0])

    async def _sync(self, conn: Connection, channels: list[str]) -> None:
        runs: list[uuid.UUID | None] = [r for r in map(_run_id, channels) if r is not None]
        if len(runs) > _SYNC_ALL:
            runs = [None]  # one barrier over every run
        for run_id in runs:
            await conn.execute(query("listener_sync_run"), {"run_id": run_id})
        if _TASKS in channels:
            await conn.execute(query("listener_sync_tasks"), {"flow_slugs": None})
