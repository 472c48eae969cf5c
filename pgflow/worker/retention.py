"""Applying flows' ``retention`` (``Flow(..., retention="30d")``) from inside workers.

Every ``retention_interval`` seconds (and once at start-up) a worker calls
``pgflow.apply_retention`` in batches of :data:`BATCH` runs, each its own short transaction,
until a batch comes back short. The SQL takes an advisory try-lock, so one worker at a time
prunes and the others skip at once. Failures are handled as for all periodic work
(:mod:`pgflow.worker.periodic`): logged, tried again soon when the failure may pass (a
deadlock, a lock timeout, a lost connection), else at the next interval.
"""

from __future__ import annotations

import logging

from pgflow.worker.periodic import Periodic

__all__ = ["BATCH", "Retention"]

BATCH = 500  # runs per transaction
MAX_BATCHES = 200  # per interval: at most 100,000 runs, then the next interval goes on

logger = logging.getLogger("pgflow.worker")


class Retention(Periodic):
    """Prunes runs past their flow's retention every ``interval`` seconds until cancelled.

    Args:
        store: the worker's SQL calls.
        interval: seconds between passes; 0 disables retention in this worker.
    """

    name = "retention"

    async def apply(self) -> int:
        """One pass (failures logged, never raised); return the runs pruned."""
        return await self.guarded_pass()

    async def one_pass(self) -> int:
        """Prune in batches while batches come back full; return the runs pruned."""
        total = 0
        for _ in range(MAX_BATCHES):
            pruned = await self._store.apply_retention(BATCH)
            if pruned is None:  # another worker is pruning
                break
            total += pruned
            if pruned < BATCH:
                break
        if total:
            logger.info(
                "retention: pruned %d finished runs",
                total,
                extra={"action": "retention_pruned", "runs": total},
            )
        return total
