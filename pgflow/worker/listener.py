"""The worker's LISTEN connection: wakes the claim loop within milliseconds.

``pgflow_tasks`` carries the flow slug of tasks that just became claimable. The listener
holds its own connection (outside the pool, so it is never borrowed away), calls
``on_wake`` for the worker's flows, and reconnects with backoff when the connection is
lost. Each (re)connection also calls ``on_wake``: notifications sent while it was down are
gone, so the worker claims once to catch up. The claim loop's fallback poll covers the rest.

Each time LISTEN is in place, ``on_listen`` runs before ``on_wake``: the worker registers
as a task listener there (:mod:`pgflow.worker.registration`), since transactions notify
only registered listeners. A failure there counts as a lost connection.

``pgflow_cancelled`` carries the id of a run whose live tasks were just cancelled; the
listener passes it to ``on_cancelled`` and tells ``on_listening`` whether LISTEN is in
place, so the cancellation watch (:mod:`pgflow.worker.cancel`) polls only while it is not.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable

import psycopg

from pgflow.db.connection import abehind_pooler
from pgflow.db.errors import describe_conninfo
from pgflow.db.retry import Backoff, Health
from pgflow.sql import query

__all__ = ["WORKER_APPLICATION_NAME", "TaskListener"]

logger = logging.getLogger("pgflow.worker")

WORKER_APPLICATION_NAME = "pgflow_worker"
"""The ``application_name`` of every worker connection, as ``pg_stat_activity`` shows it."""


class TaskListener:
    """LISTEN on ``pgflow_tasks`` and call ``on_wake`` for the given flows.

    Args:
        conninfo: the database URL.
        flow_slugs: the flows whose notifications matter.
        on_wake: called (on the event loop) when tasks of one of them may be claimable.
        health: where connection failures and recoveries are recorded.
        backoff_base: the first reconnection delay in seconds.
        on_cancelled: called with the run id a ``pgflow_cancelled`` notification carries.
        on_listening: called with True once LISTEN is in place, False when it is lost.
        on_listen: awaited each time LISTEN is in place, before ``on_wake``.
    """

    def __init__(
        self,
        conninfo: str,
        flow_slugs: Iterable[str],
        on_wake: Callable[[], None],
        health: Health,
        *,
        backoff_base: float = 0.05,
        on_cancelled: Callable[[str], None] = lambda run_id: None,
        on_listening: Callable[[bool], None] = lambda up: None,
        on_listen: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self._conninfo = conninfo
        self._flow_slugs = frozenset(flow_slugs)
        self._on_wake = on_wake
        self._health = health
        self._backoff = Backoff(backoff_base)
        self._on_cancelled = on_cancelled
        self._on_listening = on_listening
        self._on_listen = on_listen
        self.ready = asyncio.Event()
        """Set once the first LISTEN is in place."""
        self._checked = False

    async def run(self) -> None:
        """Listen until cancelled, reconnecting after failures."""
        while True:
            try:
                await self._listen()
            except Exception as exc:  # noqa: BLE001 - LISTEN is an optimisation: keep trying
                self._on_listening(False)
                self._health.failed("listener", exc)
                await asyncio.sleep(self._backoff.next_delay())

    async def _listen(self) -> None:
        # TCP keepalives notice a silently dead peer (no RST) within a minute, not never.
        conn = await psycopg.AsyncConnection.connect(
            self._conninfo,
            autocommit=True,
            application_name=WORKER_APPLICATION_NAME,
            keepalives=1,
            keepalives_idle=30,
            keepalives_interval=10,
            prepare_threshold=None,
        )
        async with conn:
            await self._check_direct(conn)
            await conn.execute(query("listen_tasks"))
            await conn.execute(query("listen_cancelled"))
            if self._on_listen is not None:
                await self._on_listen()
            self._health.ok("listener")
            self._backoff.reset()
            self.ready.set()
            self._on_listening(True)
            self._on_wake()
            async for notify in conn.notifies():
                if notify.channel == "pgflow_cancelled":
                    self._on_cancelled(notify.payload)
                elif notify.payload in self._flow_slugs:
                    self._on_wake()
        # notifies() only ends when the connection does.
        raise psycopg.OperationalError("the LISTEN connection was closed")

    async def _check_direct(self, conn: psycopg.AsyncConnection[object]) -> None:
        """Warn once when the LISTEN URL goes through a pooler (fine in session mode only)."""
        if self._checked:
            return
        self._checked = True
        if await abehind_pooler(conn):
            logger.warning(
                "the LISTEN connection to %s goes through a connection pooler: LISTEN works "
                "there only in session pooling mode; in transaction mode notifications are "
                "lost and workers fall back on their poll (set listen_url to a direct URL)",
                describe_conninfo(self._conninfo),
                extra={"action": "listen_pooled"},
            )
