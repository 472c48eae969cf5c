"""Per-step statistics from history: what ``pgflow stats`` prints (docs/telemetry.md).

One query over the tasks that finished since a moment, walking the partial index of
finished tasks (``step_tasks_finished``); percentiles are ``percentile_cont`` in SQL.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

import psycopg
from psycopg.rows import dict_row

from pgflow.sql import query
from pgflow.telemetry._window import check_flow, window_params

__all__ = ["StepStats", "step_stats"]


@dataclass(frozen=True, slots=True)
class StepStats:
    """What the tasks of one step that finished in the window add up to.

    Attributes:
        flow_slug: the flow.
        step_slug: the step.
        runs: runs whose task 0 of this step finished in the window.
        tasks: tasks that finished (completed, failed or cancelled).
        completed: of those, completed.
        failed: failed for good (retries exhausted).
        cancelled: cancelled (their run failed or was cancelled).
        retries: attempts beyond the first, over all those tasks.
        success_rate: completed / (completed + failed); None when neither.
        duration_p50: seconds from the last attempt's claim to its result (completed and
            failed tasks); None without any.
        duration_p95: likewise.
        duration_p99: likewise.
        wait_p50: queue wait in seconds: from the last attempt becoming claimable
            (``available_at``) to its claim; None without any started task.
        wait_p95: likewise.
    """

    flow_slug: str
    step_slug: str
    runs: int
    tasks: int
    completed: int
    failed: int
    cancelled: int
    retries: int
    success_rate: float | None
    duration_p50: float | None
    duration_p95: float | None
    duration_p99: float | None
    wait_p50: float | None
    wait_p95: float | None

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> StepStats:
        """Build from a ``telemetry_stats`` row."""
        duration = _three(row["duration"])
        wait = _three(row["wait"])
        decided = int(row["completed"]) + int(row["failed"])
        return cls(
            flow_slug=row["flow_slug"],
            step_slug=row["step_slug"],
            runs=int(row["runs"]),
            tasks=int(row["tasks"]),
            completed=int(row["completed"]),
            failed=int(row["failed"]),
            cancelled=int(row["tasks"]) - decided,
            retries=int(row["retries"] or 0),
            success_rate=row["completed"] / decided if decided else None,
            duration_p50=duration[0],
            duration_p95=duration[1],
            duration_p99=duration[2],
            wait_p50=wait[0],
            wait_p95=wait[1],
        )

    def to_json(self) -> dict[str, Any]:
        """The ``--json`` shape (docs/telemetry.md): these fields, durations in seconds."""
        return asdict(self)


def _three(values: Sequence[float | None] | None) -> tuple[float | None, ...]:
    return (*values, None, None, None)[:3] if values else (None, None, None)


def step_stats(
    conn: psycopg.Connection[Any],
    *,
    since: datetime | timedelta = timedelta(hours=24),
    flow_slug: str | None = None,
) -> list[StepStats]:
    """Statistics per step of the tasks that finished since ``since``.

    Args:
        conn: an autocommit connection (any role that may read the pgflow tables).
        since: a moment (timezone-aware) or a duration back from the server's clock.
        flow_slug: only this flow's steps.

    Returns:
        One entry per step with finished tasks, by flow, then in step definition order.

    Raises:
        UnknownFlowError: ``flow_slug`` names no deployed flow.
        InvalidInputError: ``since`` is neither an aware datetime nor a timedelta >= 0.
    """
    params = {**window_params(since), "flow_slug": flow_slug}
    check_flow(conn, flow_slug)
    with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
        cur.execute(query("telemetry_sort_memory"))
        rows = cur.execute(query("telemetry_stats"), params).fetchall()
    return [StepStats.from_row(row) for row in rows]
