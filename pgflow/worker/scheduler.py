"""Starting the due ticks of the served flows' schedules from inside workers.

Every ``schedule_interval`` seconds a worker reads the unpaused schedules of its flows
(``pgflow.active_schedules``), computes the due ticks with the schedule's cron expression in
its time zone (:func:`pgflow.dsl.schedules.due_ticks`, on the database's clock), and starts
each through ``pgflow.start_scheduled``. That function locks the schedule row and refuses a
tick that is not newer than the last one, and the run id is derived from the tick, so any
number of workers on any number of hosts start each tick exactly once. Failures are handled as
for all periodic work (:mod:`pgflow.worker.periodic`): logged, tried again soon when the
failure may pass, else at the next interval.
"""

from __future__ import annotations

import logging
from typing import Any

from pgflow.dsl.schedules import due_ticks
from pgflow.worker.periodic import Periodic

__all__ = ["Scheduler"]

logger = logging.getLogger("pgflow.worker")


class Scheduler(Periodic):
    """Starts due schedule ticks every ``interval`` seconds until cancelled.

    Args:
        store: the worker's SQL calls.
        interval: seconds between passes; 0 disables scheduling in this worker.
    """

    name = "schedules"

    async def tick(self) -> int:
        """One pass (failures logged, never raised); return the runs this worker started."""
        return await self.guarded_pass()

    async def one_pass(self) -> int:
        """Start every due tick of the served flows' schedules; return how many started."""
        started = 0
        for schedule in await self._store.active_schedules():
            started += await self._start_due(schedule)
        return started

    async def _start_due(self, schedule: dict[str, Any]) -> int:
        flow_slug, name = schedule["flow_slug"], schedule["name"]
        ticks, skipped = due_ticks(
            schedule["cron"],
            schedule["timezone"],
            schedule["catch_up"],
            schedule["since"],
            schedule["db_now"],
        )
        if skipped is not None:
            await self._store.start_scheduled(flow_slug, name, skipped, skip=True)
        started = 0
        for tick in ticks:
            run_id = await self._store.start_scheduled(flow_slug, name, tick)
            if run_id is not None:
                started += 1
                logger.info(
                    "schedule %s.%s: started run %s for %s",
                    flow_slug,
                    name,
                    run_id,
                    tick.isoformat(),
                    extra={"action": "schedule_started", "run_id": str(run_id),
                           "flow_slug": flow_slug, "schedule": name},
                )  # fmt: skip
        return started
