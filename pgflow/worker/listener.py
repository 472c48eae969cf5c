"""The worker's LISTEN connection: wakes the claim loop within milliseconds.

``pgflow_tasks`` carries the flow slug of tasks that just became claimable. The listener
holds its own connection (outside the pool, so it is never borrowed away), calls
``on_wake`` for the worker's flows, and reconnects with backoff when the connection is
lost. Each (re)connection also calls ``on_wake``: notifications sent while it was down are
gone, so the worker claims once to catch up. The claim loop's fallback poll covers the rest.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable

import psycopg

from pgflow.sql import query
from pgflow.worker.retry import Backoff, Health

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
    """

    def __init__(
        self,
        conninfo: str,
        flow_slugs: Iterable[str],
        on_wake: Callable[[], None],
        health: Health,
        *,
        backoff_base: float = 0.05,
    ) -> None:
        self._conninfo = conninfo
        self._flow_slugs = frozenset(flow_slugs)
        self._on_wake = on_wake
        self._health = health
        self._backoff = Backoff(backoff_base)
        self.ready = asyncio.Event()
        """Set once the first LISTEN is in place."""

    async def run(self) -> None:
        """Listen until cancelled, reconnecting after failures."""
        while True:
            try:
                await self._listen()
            except Exception as exc:  # noqa: BLE001 - LISTEN is an optimisation: keep trying
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
        )
        async with conn:
            await conn.execute(query("listen_tasks"))
            self._health.ok("listener")
            self._backoff.reset()
            self.ready.set()
            self._on_wake()
            async for notify in conn.notifies():
                if notify.payload in self._flow_slugs:
                    self._on_wake()
        # notifies() only ends when the connection does.
        raise psycopg.OperationalError("the LISTEN connection was closed")
