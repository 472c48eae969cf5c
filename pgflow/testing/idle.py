"""Skip the waiting: move the test clock whenever a run only waits for time.

While an in-process worker works on a run, :func:`advance_when_idle` watches the tasks of
the flows it serves. When nothing runs on that worker and nothing is claimable, but a task
waits for a time (retry backoff, ``start_delay``, another worker's lease), it moves the
test clock (:mod:`pgflow.testing.clock`) to that time and wakes the workers, so a retry an
hour away runs at once. It never moves the clock while anything else can happen.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Sequence
from typing import Any

import psycopg
from psycopg.rows import dict_row

from pgflow.db.errors import wrap_db_errors
from pgflow.errors import PgflowError
from pgflow.sql import query

__all__ = ["advance_when_idle"]

logger = logging.getLogger("pgflow.testing")

POLL_INTERVAL = 0.01
"""Seconds between looks at the run's tasks."""
STUCK_AFTER = 1.0
"""Seconds a run may have nothing running, ready or waiting before it counts as stuck."""


async def advance_when_idle(
    database_url: str, run_id: uuid.UUID, flow_slugs: Sequence[str], worker_id: uuid.UUID
) -> None:
    """Move the test clock whenever the run only waits for time; return once it finished.

    Args:
        database_url: the test database (with the test clock installed).
        run_id: the run to follow.
        flow_slugs: the flows the worker serves.
        worker_id: the worker working on them (its running tasks mean "busy").

    Raises:
        PgflowError: the run is unfinished with nothing running, ready or waiting (stuck).
    """
    params = {"run_id": run_id, "flow_slugs": list(flow_slugs), "worker_id": worker_id}
    async with wrap_db_errors(conninfo=database_url):
        conn = await psycopg.AsyncConnection.connect(
            database_url, autocommit=True, row_factory=dict_row
        )
        async with conn:
            await _follow(conn, params)


async def _follow(conn: psycopg.AsyncConnection[dict[str, Any]], params: dict[str, Any]) -> None:
    idle_since: float | None = None
    while True:
        row = await (await conn.execute(query("test_run_wait"), params)).fetchone()
        if row is None or row["run_status"] != "started":
            return
        if row["busy"]:
            idle_since = None
        elif row["next_at"] is not None:
            idle_since = None
            await _advance(conn, row)
        elif idle_since is None:
            idle_since = time.monotonic()
        elif time.monotonic() - idle_since > STUCK_AFTER:
            raise _stuck(params["run_id"])
        await asyncio.sleep(POLL_INTERVAL)


async def _advance(conn: psycopg.AsyncConnection[dict[str, Any]], row: dict[str, Any]) -> None:
    await conn.execute(query("test_clock_advance_to"), {"at": row["next_at"]})
    await conn.execute(query("test_clock_wake"))
    seconds = max((row["next_at"] - row["now"]).total_seconds(), 0.0)
    logger.info(
        "test clock advanced %gs to %s: the run only waited for time",
        round(seconds, 3),
        row["next_at"].isoformat(),
        extra={"action": "test_clock_advanced", "seconds": seconds},
    )


def _stuck(run_id: uuid.UUID) -> PgflowError:
    return PgflowError(
        f"run {run_id} is not finished, yet none of its tasks runs, is ready or waits",
        hint=f"`pgflow status {run_id}` shows where it stands",
        run_id=run_id,
    )
