"""Applying flows' ``retention`` (``Flow(..., retention="30d")``) from inside workers.

Every ``retention_interval`` seconds (and once at start-up) a worker calls
``pgflow.apply_retention`` in batches of :data:`BATCH` runs, each its own short transaction,
until a batch comes back short. The SQL takes an advisory try-lock, so one worker at a time
prunes and the others skip at once. A failure is logged (a lost connection only at DEBUG:
the claim loop reports outages) and tried again at the next interval: pruning never stops a
worker.
"""

from __future__ import annotations

import asyncio
import logging

from pgflow.db.retry import is_transient
from pgflow.worker.store import WorkerStore

__all__ = ["BATCH", "Retention"]

BATCH = 500  # runs per transaction
MAX_BATCHES = 200  # per interval: at most 100,000 runs, then the next interval goes on

logger = logging.getLogger("pgflow.worker")


class Retention:
    """Prunes runs past their flow's retention every ``interval`` seconds until cancelled.

    Args:
        store: the worker's SQL calls.
        interval: seconds between passes; 0 disables retention in this worker.
    """

    def __init__(self, store: WorkerStore, interval: float) -> None:
        self._store = store
        self._interval = interval

    async def run(self) -> None:
        """Apply retention now and every interval, until cancelled (never when disabled)."""
        if self._interval <= 0:
            return
        while True:
            await self.apply()
            await asyncio.sleep(self._interval)

    async def apply(self) -> int:
        """One pass: prune in batches while batches come back full; return the runs pruned."""
        total = 0
        try:
            for _ in range(MAX_BATCHES):
                pruned = await self._store.apply_retention(BATCH)
                if pruned is None:  # another worker is pruning
                    break
                total += pruned
                if pruned < BATCH:
                    break
        except Exception as exc:  # noqa: BLE001 - pruning must never stop the worker
            level = logging.DEBUG if is_transient(exc) else logging.WARNING
            logger.log(level, "retention failed: %s", exc, extra={"action": "retention_failed"})
            return total
        if total:
            logger.info(
                "retention: pruned %d finished runs",
                total,
                extra={"action": "retention_pruned", "runs": total},
            )
        return total
