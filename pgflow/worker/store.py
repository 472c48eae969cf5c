"""Every SQL call the worker makes, over its connection pool.

One object owns the worker's SQL: claiming, reporting, releasing and the
``workers`` bookkeeping. Each method is one short transaction. Errors are psycopg's own:
callers decide what is transient (:mod:`pgflow.db.retry`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any
from uuid import UUID

from psycopg.rows import class_row, dict_row
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from pgflow._decode import decode_task_values
from pgflow._json import jsonb
from pgflow.sql import query

__all__ = ["AttemptKey", "ClaimedTask", "Report", "TaskError", "WorkerStore"]

AttemptKey = tuple[UUID, str, int, int]
"""``(run_id, step_slug, task_index, attempt)``: one attempt of one task."""


@dataclass(frozen=True, slots=True)
class ClaimedTask:
    """A task leased to this worker by ``claim_tasks``.

    Attributes:
        run_id: the run.
        flow_slug: the flow.
        step_slug: the step.
        task_index: 0 for single steps, the element index for map tasks.
        attempt: the attempt number this lease is for (fences the report).
        input: the built task input (flow input, ``{dep: output}`` or one element), or
            :class:`~pgflow._decode.Undecodable` when Python cannot decode it.
        flow_input: the run's input (or :class:`~pgflow._decode.Undecodable`).
        deadline: when the lease expires (database clock).
        is_map: whether the task is one element of a map step (labelled ``step[index]``).
        trace_context: the run's W3C trace context (``traceparent``/``tracestate``), or None.
        claim_lag: seconds from the task becoming claimable to this claim.
    """

    run_id: UUID
    flow_slug: str
    step_slug: str
    task_index: int
    attempt: int
    input: Any
    flow_input: Any
    deadline: datetime
    is_map: bool = False
    trace_context: Any = None
    claim_lag: float = 0.0

    @property
    def key(self) -> AttemptKey:
        """``(run_id, step_slug, task_index, attempt)``: this attempt, among all others."""
        return (self.run_id, self.step_slug, self.task_index, self.attempt)

    @property
    def label(self) -> str:
        """``step``, or ``step[index]`` for map tasks, for log lines."""
        return f"{self.step_slug}[{self.task_index}]" if self.is_map else self.step_slug

    def log_extra(self, action: str, **more: Any) -> dict[str, Any]:
        """The ``extra`` of a log record about this task."""
        return {
            "action": action,
            "run_id": str(self.run_id),
            "flow_slug": self.flow_slug,
            "step_slug": self.step_slug,
            "task_index": self.task_index,
            "attempt": self.attempt,
            **more,
        }


@dataclass(frozen=True, slots=True)
class TaskError:
    """Why an attempt failed, as stored with the task.

    Attributes:
        type: the qualified exception type (``ValueError``, ``app.errors.Boom``).
        message: the exception's message.
        traceback: the formatted traceback, or None when there is no exception behind it.
    """

    type: str
    message: str
    traceback: str | None = None


@dataclass(frozen=True, slots=True)
class Report:
    """The result of one attempt: an output (completion) or an error (failure).

    Attributes:
        task: the attempt.
        output: the handler's output (completions), or its reference when stored.
        error: why the attempt failed (failures).
        elapsed: seconds the handler ran, for the log line written once the report is stored.
        encoded: ``output`` as JSON, when already encoded (it is sent as is).
    """

    task: ClaimedTask
    output: Any = None
    error: TaskError | None = None
    elapsed: float = 0.0
    encoded: bytes | None = None


class WorkerStore:
    """The worker's SQL calls.

    Args:
        pool: an open async pool of autocommit connections.
        worker_id: this worker's id (recorded on claimed tasks and in ``workers``).
        flow_slugs: the flows this worker serves.
        map_steps: ``(flow_slug, step_slug)`` of the map steps among them.
        step_slugs: a worker pool's steps (only their tasks are claimed), or None for all.
    """

    def __init__(
        self,
        pool: AsyncConnectionPool,
        worker_id: UUID,
        flow_slugs: Sequence[str],
        map_steps: Collection[tuple[str, str]] = (),
        step_slugs: Sequence[str] | None = None,
    ):
        self.pool = pool
        self.worker_id = worker_id
        self.flow_slugs = list(flow_slugs)
        self.map_steps = frozenset(map_steps)
        self.step_slugs = None if step_slugs is None else list(step_slugs)

    async def claim(self, max_tasks: int) -> tuple[list[ClaimedTask], float]:
        """Lease up to ``max_tasks`` ready tasks of this worker's flows (and steps).

        Each task's ``input`` and ``flow_input`` are decoded on their own; a value Python
        refuses arrives as :class:`~pgflow._decode.Undecodable`, for the runner to fail that
        task alone (docs/guarantees.md, "Poison tasks fail alone").

        Returns the tasks and the event loop's time when the claim was sent, with a
        connection in hand: the transaction that leased them began no sooner, so their
        leases end no sooner than their timeouts after it.
        """
        params = {
            "flow_slugs": self.flow_slugs,
            "worker_id": self.worker_id,
            "step_slugs": self.step_slugs,
        }
        async with self.pool.connection() as conn:
            cur = conn.cursor(row_factory=class_row(ClaimedTask))
            decode_task_values(cur)
            sent = asyncio.get_running_loop().time()
            await cur.execute(query("worker_claim_tasks"), {**params, "max_tasks": max_tasks})
            tasks = await cur.fetchall()
        if not self.map_steps:
            return tasks, sent
        return [
            replace(t, is_map=True) if (t.flow_slug, t.step_slug) in self.map_steps else t
            for t in tasks
        ], sent

    async def report(self, reports: Sequence[Report]) -> set[AttemptKey]:
        """Store completions and failures, all in one transaction.

        Returns:
            The attempts whose report changed nothing: fenced because the task was
            cancelled, taken over by another attempt, or its run is gone.
        """
        done = [r for r in reports if r.error is None]
        failed = [r for r in reports if r.error is not None]
        calls = [
            (query(name), params(batch))
            for name, batch, params in (
                ("worker_complete_tasks", done, _completions),
                ("worker_fail_tasks", failed, _failures),
            )
            if batch
        ]
        refused: set[AttemptKey] = set()
        # one statement is a transaction of its own (autocommit): BEGIN and COMMIT would be
        # two more round trips per report
        async with (
            self.pool.connection() as conn,
            conn.transaction() if len(calls) > 1 else nullcontext(),
        ):
            for sql, values in calls:
                cur = await conn.execute(sql, values)
                refused.update((r[0], r[1], r[2], r[3]) for r in await cur.fetchall())
        return refused

    async def cancelled_attempts(self, tasks: Sequence[ClaimedTask]) -> set[AttemptKey]:
        """Which of these running attempts may no longer run (cancelled, taken over, gone)."""
        async with self.pool.connection() as conn:
            cur = await conn.execute(query("worker_cancelled_attempts"), _key_arrays(tasks))
            return {(r[0], r[1], r[2], r[3]) for r in await cur.fetchall()}

    async def release(self) -> int:
        """Give back every task still leased to this worker; return how many."""
        return int(await self._scalar("worker_release_tasks", worker_id=self.worker_id) or 0)

    async def register(self, hostname: str, pid: int) -> None:
        """Upsert this worker's row in ``pgflow.workers``."""
        await self._scalar(
            "worker_register",
            worker_id=self.worker_id,
            flow_slugs=self.flow_slugs,
            hostname=hostname,
            pid=pid,
        )

    async def heartbeat(self) -> bool:
        """Record a heartbeat; False when the worker's row no longer exists."""
        return bool(await self._scalar("worker_heartbeat", worker_id=self.worker_id))

    async def listen_tasks(self, ttl_seconds: int) -> bool:
        """Register this worker as a task listener of its flows; False when the
        registration was not live before (see ``pgflow.listen_tasks``)."""
        live = await self._scalar(
            "listener_listen_tasks",
            listener_id=self.worker_id,
            flow_slugs=self.flow_slugs,
            ttl_seconds=ttl_seconds,
        )
        return bool(live)

    async def sync_tasks(self) -> bool:
        """The barrier of this worker's flows (``pgflow.sync_tasks``); False when it gave up."""
        return bool(await self._scalar("listener_sync_tasks", flow_slugs=self.flow_slugs))

    async def apply_retention(self, max_runs: int) -> int | None:
        """Prune up to ``max_runs`` runs past their flow's retention; None when another
        worker holds the retention lock (see ``pgflow.apply_retention``)."""
        pruned = await self._scalar("worker_apply_retention", max_runs=max_runs)
        return None if pruned is None else int(pruned)

    async def create_history_partitions(self, months_ahead: int) -> list[str]:
        """Create the missing history partitions up to ``months_ahead`` months ahead; the
        months created, e.g. ``["2027-01"]`` (see ``pgflow.create_history_partitions``)."""
        async with self.pool.connection() as conn:
            cur = conn.cursor(row_factory=dict_row)
            await cur.execute(
                query("worker_create_history_partitions"), {"months_ahead": months_ahead}
            )
            return [row["month"] for row in await cur.fetchall()]

    async def active_schedules(self) -> list[dict[str, Any]]:
        """The unpaused schedules of this worker's flows (see ``pgflow.active_schedules``)."""
        async with self.pool.connection() as conn:
            cur = conn.cursor(row_factory=dict_row)
            await cur.execute(query("worker_active_schedules"), {"flow_slugs": self.flow_slugs})
            return await cur.fetchall()

    async def start_scheduled(
        self, flow_slug: str, name: str, tick: datetime, *, skip: bool = False
    ) -> UUID | None:
        """Start the run of one tick (None: already started, paused, or ``skip``)."""
        run_id = await self._scalar(
            "worker_start_scheduled", flow_slug=flow_slug, schedule=name, tick=tick, skip=skip
        )
        return run_id if isinstance(run_id, UUID) else None

    async def stopped(self) -> None:
        """Mark this worker as stopped."""
        await self._scalar("worker_stopped", worker_id=self.worker_id)

    async def _scalar(self, name: str, **params: Any) -> Any:
        async with self.pool.connection() as conn:
            row = await (await conn.execute(query(name), params)).fetchone()
        return row[0] if row else None


def _key_arrays(tasks: Sequence[ClaimedTask]) -> dict[str, list[Any]]:
    return {
        "run_ids": [t.run_id for t in tasks],
        "step_slugs": [t.step_slug for t in tasks],
        "task_indexes": [t.task_index for t in tasks],
        "attempts": [t.attempt for t in tasks],
    }


def _completions(reports: Sequence[Report]) -> dict[str, list[Any]]:
    outputs = [jsonb(r.output) if r.encoded is None else _encoded(r.output, r.encoded)
               for r in reports]  # fmt: skip
    return {**_key_arrays([r.task for r in reports]), "outputs": outputs}


def _encoded(output: Any, encoded: bytes) -> Jsonb:
    return Jsonb(output, dumps=lambda _: encoded)


def _failures(reports: Sequence[Report]) -> dict[str, list[Any]]:
    errors = [r.error for r in reports if r.error is not None]
    return {
        **_key_arrays([r.task for r in reports]),
        "error_messages": [e.message for e in errors],
        "error_types": [e.type for e in errors],
        "error_tracebacks": [e.traceback for e in errors],
    }
