"""Work a worker does every so often beside claiming: retention, schedules.

:class:`Periodic` runs one pass at start-up and then every ``interval`` seconds until
cancelled. A pass that fails is logged (a lost connection only at DEBUG: the claim loop
reports outages) and tried again at the next interval: periodic work never stops a worker.
"""

from __future__ import annotations

import asyncio
import logging

from pgflow.db.retry import is_transient
from pgflow.worker.store import WorkerStore

__all__ = ["Periodic"]

logger = logging.getLogger("pgflow.worker")


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

    async def run(self) -> None:
        """Do a pass now and every interval, until cancelled (never when disabled)."""
        if self._interval <= 0:
            return
        while True:
            await self.guarded_pass()
            await asyncio.sleep(self._interval)

    async def guarded_pass(self) -> int:
        """One pass; a failure is logged, never raised. Returns what the pass counted."""
        try:
            return await self.one_pass()
        except Exception as exc:  # noqa: BLE001 - periodic work must never stop the worker
            level = logging.DEBUG if is_transient(exc) else logging.WARNING
            action = self.name.replace(" ", "_") + "_failed"
            logger.log(level, "%s failed: %s", self.name, exc, extra={"action": action})
            return 0

    async def one_pass(self) -> int:
        """Do the work once; return how many things it did (for logs and tests)."""
        raise NotImplementedError
