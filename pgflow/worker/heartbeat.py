"""Heartbeats into ``pgflow.workers``: who is alive, since when, serving which flows.

Registration is informative (claiming never requires it), so a failed heartbeat is only
recorded in :class:`~pgflow.db.retry.Health` and tried again at the next beat. A worker
whose row disappeared (pruned by an operator, say) registers again. The heartbeat also
renews the worker's task listener registration (:mod:`pgflow.worker.registration`).
"""

from __future__ import annotations

import asyncio
import logging
import time

from pgflow.db.retry import Health, is_transient
from pgflow.worker.registration import TaskRegistration
from pgflow.worker.store import WorkerStore

__all__ = ["Heartbeat"]

logger = logging.getLogger("pgflow.worker")


class Heartbeat:
    """Beats every ``interval`` seconds until cancelled.

    Args:
        store: the worker's SQL calls.
        interval: seconds between beats.
        health: where transient failures are recorded.
        hostname: this machine's name, for registration.
        pid: this process's id, for registration.
        listener: the task listener registration the heartbeat renews, if any.
    """

    def __init__(
        self,
        store: WorkerStore,
        interval: float,
        health: Health,
        hostname: str,
        pid: int,
        listener: TaskRegistration | None = None,
    ) -> None:
        self._listener = listener
        self._store = store
        self._interval = interval
        self._health = health
        self._hostname = hostname
        self._pid = pid

    async def register(self) -> None:
        """Announce the worker (upsert its row)."""
        await self._store.register(self._hostname, self._pid)

    async def run(self) -> None:
        """Beat until cancelled."""
        while True:
            await asyncio.sleep(self._interval)
            await self.beat()

    async def beat(self) -> None:
        """Record one heartbeat, registering again if the worker's row is gone."""
        started = time.monotonic()
        try:
            if not await self._store.heartbeat():
                await self.register()
            if self._listener is not None:
                await self._listener.renewed(started)
        except Exception as exc:  # noqa: BLE001 - a heartbeat must never stop the worker
            if not is_transient(exc):
                logger.warning("heartbeat failed: %s", exc, extra={"action": "heartbeat_failed"})
                return
            self._health.failed("heartbeat", exc)
        else:
            self._health.ok("heartbeat")
