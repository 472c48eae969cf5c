"""Work a worker does every so often beside claiming: retention, schedules.

:class:`Periodic` runs one pass at start-up and then every ``interval`` seconds until
cancelled. A pass that fails is logged (a lost connection only at DEBUG: the claim loop
reports outages): periodic work never stops a worker. A failure that a later try may not
meet (a lost connection, a deadlock, a lock wait past ``lock_timeout``: at start-up a
worker's jobs and claims run side by side) is tried again after a backoff of about a
second, doubling up to the interval; any other failure waits for the next interval.
"""

from __future__ import annotations

import asyncio
import logging

import psycopg

from pgflow.db.retry import Backoff, is_transient
from pgflow.worker.store import WorkerStore

__all__ = ["Periodic"]

logger = logging.getLogger("pgflow.worker")

_LOCK_NOT_AVAILABLE = "55P03"  # lock_timeout passed while waiting for a lock
RETRY_BASE = 1.0
"""Seconds before the first retry of a pass that failed for a passing reason."""


def _passing(exc: BaseException) -> bool:
    """Whether a failed pass may succeed if tried again in a moment."""
    lock = isinstance(exc, psycopg.Error) and exc.sqlstate == _LOCK_NOT_AVAILABLE
    return lock or is_transient(exc)


class Periodic:
    """Base of the worker's periodic jobs: subclasses implement :meth:`one_pass`.

    Args:
        store: the worker's SQL calls.
        interval: seconds between passes; 0 disables the job in this worker.
    """

    name = "periodic work"
    """What the job is called in a failure's log line."""

    def __init__(self, store: WorkerStore, interval: float) -> None:
        self._store = store
        self._interval = interval
        self._retry = False  # the last pass failed for a passing reason

    async def run(self) -> None:
        """Do a pass now and every interval, until cancelled (never when disabled)."""
        if self._interval <= 0:
            return
        backoff = Backoff(base=min(RETRY_BASE, self._interval), cap=self._interval)
        while True:
            await self.guarded_pass()
            if self._retry:
                await asyncio.sleep(backoff.next_delay())
            else:
                backoff.reset()
                await asyncio.sleep(self._interval)

    async def guarded_pass(self) -> int:
        """One pass; a failure is logged, never raised. Returns what the pass counted."""
        self._retry = False
        try:
            return await self.one_pass()
        except Exception as exc:  # noqa: BLE001 - periodic work must never stop the worker
            self._retry = _passing(exc)
            level = logging.DEBUG if is_transient(exc) else logging.WARNING
            action = self.name.replace(" ", "_") + "_failed"
            logger.log(level, "%s failed: %s", self.name, exc, extra={"action": action})
            return 0

    async def one_pass(self) -> int:
        """Do the work once; return how many things it did (for logs and tests)."""
        raise NotImplementedError
