"""Finished history for the telemetry tests, inserted with exact timestamps."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

import psycopg

from tests.integration.sql.helpers import define

__all__ = ["define_pipeline", "finished_task"]


def define_pipeline(conn: psycopg.Connection[Any], flow: str = "pipeline") -> None:
    """A three-step chain: fetch -> parse -> save."""
    define(conn, flow, ("fetch", []), ("parse", ["fetch"]), ("save", ["parse"]))


def finished_task(
    conn: psycopg.Connection[Any],
    *,
    flow: str = "pipeline",
    step: str = "fetch",
    ended: datetime,
    took: float = 1.0,
    waited: float = 0.0,
    status: str = "completed",
    attempts: int = 1,
    run_id: uuid.UUID | None = None,
    task_index: int = 0,
) -> uuid.UUID:
    """Insert one finished task: claimable ``waited`` s before its claim, ``took`` s to end."""
    run = run_id or uuid.uuid4()
    started = ended - timedelta(seconds=took)
    available = started - timedelta(seconds=waited)
    conn.execute(
        "insert into pgflow.step_tasks (run_id, step_slug, task_index, flow_slug, status,"
        " attempts_count, queued_at, available_at, started_at, completed_at, failed_at,"
        " cancelled_at) values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
        [
            run, step, task_index, flow, status, attempts, available, available, started,
            ended if status == "completed" else None,
            ended if status == "failed" else None,
            ended if status == "cancelled" else None,
        ],
    )  # fmt: skip
    return run
