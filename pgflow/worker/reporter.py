"""Storing task results: batched, retried, never dropped while the process lives.

Handlers hand their :class:`~pgflow.worker.store.Report` to :meth:`Reporter.submit` and move
on. One background task flushes whatever is pending, right away, in one transaction: when
the worker is idle a report is stored as soon as it exists, and under load the reports
that arrived during a flush go together in the next one. Transient errors (lost connection,
deadlock) are retried with backoff until they succeed. A batch Postgres refuses for another
reason is split up to find the culprit; a completion whose output Postgres refuses (a NUL
character in a string, say) is stored as a failed attempt saying why.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence

from pgflow.db.retry import Backoff, Health, retrying
from pgflow.worker.store import AttemptKey, Report, TaskError, WorkerStore

__all__ = ["Reporter"]

logger = logging.getLogger("pgflow.worker")


class Reporter:
    """Stores reports in the background (see the module docstring).

    Args:
        store: the worker's SQL calls.
        health: where transient failures are recorded.
        backoff_base: the first retry delay in seconds.
        max_batch: the most reports per transaction.
        on_failure: awaited after a transient failure (e.g. to check the pool).
        on_stored: called after each batch is stored (a worker that cannot LISTEN claims
            again then: the reports may have readied dependent steps).
        on_reported: called after each batch is stored with the batch and the attempts
            whose report the database refused (fenced): what the worker logs.
    """

    def __init__(
        self,
        store: WorkerStore,
        health: Health,
        *,
        backoff_base: float = 0.05,
        max_batch: int = 500,
        on_failure: Callable[[], Awaitable[None]] | None = None,
        on_stored: Callable[[], None] | None = None,
        on_reported: Callable[[Sequence[Report], set[AttemptKey]], None] | None = None,
    ) -> None:
        self._store = store
        self._health = health
        self._backoff_base = backoff_base
        self._max_batch = max_batch
        self._on_failure = on_failure
        self._on_stored = on_stored
        self._on_reported = on_reported
        self._pending: list[Report] = []
        self._flushing: Sequence[Report] = ()
        self._wakeup = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()

    def unreported(self) -> list[Report]:
        """The reports not stored yet (queued or being flushed)."""
        return [*self._flushing, *self._pending]

    def submit(self, report: Report) -> None:
        """Queue a report; it is stored as soon as the flusher gets to it."""
        self._pending.append(report)
        self._idle.clear()
        self._wakeup.set()

    async def wait_idle(self) -> None:
        """Return once every submitted report is stored."""
        await self._idle.wait()

    async def run(self) -> None:
        """Flush reports until cancelled."""
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            while self._pending:
                batch = self._pending[: self._max_batch]
                del self._pending[: self._max_batch]
                self._flushing = batch
                await self._flush(batch)
                self._flushing = ()
            self._idle.set()

    async def _flush(self, batch: Sequence[Report]) -> None:
        try:
            refused = await retrying(
                lambda: self._store.report(batch),
                component="reports",
                health=self._health,
                backoff=Backoff(self._backoff_base),
                on_failure=self._on_failure,
            )
        except Exception as exc:  # noqa: BLE001 - split the batch to find what Postgres refuses
            if len(batch) > 1:
                for report in batch:  # find the report Postgres refuses
                    await self._flush([report])
            else:
                await self._refused(batch[0], exc)
        else:
            if self._on_reported is not None:
                self._on_reported(batch, refused)
            if self._on_stored is not None:
                self._on_stored()

    async def _refused(self, report: Report, exc: Exception) -> None:
        task = report.task
        if report.error is None:
            logger.warning(
                "Postgres refused the output of run=%s step=%s attempt=%d: %s",
                task.run_id,
                task.label,
                task.attempt,
                exc,
                extra={"action": "output_refused", "run_id": str(task.run_id)},
            )
            error = TaskError(
                "pgflow.errors.InvalidInputError",
                f"step {task.step_slug!r} of flow {task.flow_slug!r}: Postgres refused the "
                f"handler's output: {exc} (return JSON that jsonb accepts, e.g. no NUL "
                "characters in strings)",
            )
            await self._flush([Report(task, error=error)])
            return
        logger.error(
            "could not store the failure of run=%s step=%s attempt=%d: %s; the task is "
            "retried when its lease expires",
            task.run_id,
            task.label,
            task.attempt,
            exc,
            extra={"action": "report_lost", "run_id": str(task.run_id)},
        )
