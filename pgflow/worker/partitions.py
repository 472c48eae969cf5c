"""Creating the coming months' history partitions from inside workers.

The runtime tables are partitioned by run id, month by month (docs/scaling.md, "History
partitions"). Every ``retention_interval`` seconds (and once at start-up) a worker calls
``pgflow.create_history_partitions`` so that the current month and the next
:data:`MONTHS_AHEAD` have their partitions long before their first run. The call is cheap
when they exist (a catalog lookup per month) and takes an advisory try-lock, so one worker
at a time creates them. Nothing waits for it: a run whose month has no partition is stored
in the default partition. Failures (e.g. the tables stayed locked past the call's
``lock_timeout``, or a deadlock with the worker's other start-up work) are logged and
tried again after about a second, doubling up to the interval (:mod:`pgflow.worker.periodic`).
"""

from __future__ import annotations

import logging

from pgflow.worker.periodic import Periodic

__all__ = ["MONTHS_AHEAD", "HistoryPartitions"]

MONTHS_AHEAD = 2

logger = logging.getLogger("pgflow.worker")


class HistoryPartitions(Periodic):
    """Creates missing history partitions every ``interval`` seconds until cancelled."""

    name = "history partitions"

    async def one_pass(self) -> int:
        """Create the missing months; return how many were created."""
        months = await self._store.create_history_partitions(MONTHS_AHEAD)
        if months:
            logger.info(
                "history partitions: created %s",
                ", ".join(months),
                extra={"action": "history_partitions_created", "months": months},
            )
        return len(months)
