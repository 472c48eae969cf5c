"""Cancellation that reaches running handlers: ``ctx.cancelled`` and the cancel grace.

When Postgres cancels live tasks (``cancel_run``; a run failing because one of its steps
failed; a step skipped while its tasks run) it notifies ``pgflow_cancelled`` with the run
id. :class:`CancelWatch` knows the attempts this worker is running. When a notification
names the run of one of them, one query (``cancelled_attempts``, primary-key lookups)
tells which may no longer run, and for each the watch:

1. sets ``ctx.cancelled`` at once;
2. cancels the asyncio task of an async handler still running ``cancel_grace`` seconds
   later (a sync handler's thread cannot be killed: it keeps its slot until it returns);

and the supervisor discards whatever the handler returns instead of reporting it.

Notifications are lost while the LISTEN connection is down, so the same query also runs
once after every (re)connection, every ``poll_interval`` seconds while LISTEN is down, and
every ``heartbeat_interval`` seconds while it is up (a safety net; it runs only while
handlers do). A notification that arrives before the claim holding a task of that run
has returned is remembered for a few seconds and checked when the task starts.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from dataclasses import dataclass
from uuid import UUID

from pgflow.db.retry import Backoff, Health, is_transient
from pgflow.dsl.context import Context
from pgflow.worker.settings import WorkerSettings
from pgflow.worker.store import AttemptKey, ClaimedTask, Report, WorkerStore

__all__ = ["CancelWatch"]

logger = logging.getLogger("pgflow.worker")

_REMEMBER = 5.0  # seconds a notification for a run with no running task is kept


@dataclass(slots=True, eq=False)
class _Running:
    task: ClaimedTask
    ctx: Context
    job: asyncio.Task[None]
    is_async: bool
    timer: asyncio.TimerHandle | None = None


class CancelWatch:
    """Sets ``ctx.cancelled`` of running handlers whose tasks were cancelled.

    Args:
        store: the worker's SQL calls.
        settings: ``cancel_grace``, ``poll_interval``, ``heartbeat_interval`` and
            ``retry_base_delay`` are used.
        health: where transient database failures are recorded.
    """

    def __init__(self, store: WorkerStore, settings: WorkerSettings, health: Health) -> None:
        self._store = store
        self._settings = settings
        self._health = health
        self._running: dict[AttemptKey, _Running] = {}
        self._recent: OrderedDict[UUID, float] = OrderedDict()
        self._check = asyncio.Event()
        self._listening = False
        self._backoff = Backoff(settings.retry_base_delay)
        self._retry_in: float | None = None
        self.discarded = 0
        """How many results (or errors) of cancelled tasks were discarded."""

    def track(
        self, task: ClaimedTask, ctx: Context, job: asyncio.Task[None], is_async: bool
    ) -> None:
        """A handler started running ``task`` in ``job``."""
        self._running[task.key] = _Running(task, ctx, job, is_async)
        if task.run_id in self._recent:
            self._check.set()

    def forget(self, task: ClaimedTask) -> None:
        """The handler of ``task`` returned (or its job ended)."""
        entry = self._running.pop(task.key, None)
        if entry is not None and entry.timer is not None:
            entry.timer.cancel()

    def discard(self, report: Report) -> None:
        """Drop the result of a task cancelled while its handler ran; say so once."""
        self.discarded += 1
        task, error = report.task, report.error
        logger.info(
            "discarded the %s of run=%s step=%s attempt=%d: the task was cancelled while "
            "its handler ran",
            "result" if error is None else f"error ({error.type})",
            task.run_id,
            task.label,
            task.attempt,
            extra=task.log_extra("result_discarded", failed=error is not None),
        )

    def notified(self, payload: str) -> None:
        """A ``pgflow_cancelled`` notification arrived (payload: a run id)."""
        try:
            run_id = UUID(payload)
        except ValueError:
            return
        now = time.monotonic()
        while self._recent and now - next(iter(self._recent.values())) > _REMEMBER:
            self._recent.popitem(last=False)
        self._recent[run_id] = now
        self._recent.move_to_end(run_id)
        if any(entry.task.run_id == run_id for entry in self._running.values()):
            self._check.set()

    def listening(self, up: bool) -> None:
        """LISTEN is in place (check what may have been missed) or lost (poll faster)."""
        if up != self._listening:
            self._listening = up
            self._check.set()

    async def run(self) -> None:
        """Check the running attempts when told to, and periodically; until cancelled."""
        while True:
            await self._wait(self._interval())
            self._check.clear()
            if self._running:
                await self._sweep()

    def _interval(self) -> float:
        settings = self._settings
        interval = settings.heartbeat_interval if self._listening else settings.poll_interval
        return interval if self._retry_in is None else min(interval, self._retry_in)

    async def _wait(self, timeout: float) -> None:
        try:
            async with asyncio.timeout(timeout):
                await self._check.wait()
        except TimeoutError:
            pass

    async def _sweep(self) -> None:
        entries = [e for e in self._running.values() if not e.ctx.cancelled.is_set()]
        if not entries:
            return
        try:
            gone = await self._store.cancelled_attempts([e.task for e in entries])
        except Exception as exc:  # noqa: BLE001 - tried again soon; never stops the worker
            self._failed(exc)
            return
        self._health.ok("cancellations")
        self._backoff.reset()
        self._retry_in = None
        for key in gone:
            entry = self._running.get(key)
            if entry is not None:
                self._cancel(entry)

    def _failed(self, exc: Exception) -> None:
        if is_transient(exc):
            self._health.failed("cancellations", exc)
            self._retry_in = self._backoff.next_delay()
        else:
            logger.warning(
                "could not check for cancelled tasks: %s", exc, extra={"action": "check_failed"}
            )

    def _cancel(self, entry: _Running) -> None:
        task = entry.task
        entry.ctx.cancelled.set()
        logger.info(
            "task cancelled while running run=%s step=%s attempt=%d: ctx.cancelled is set",
            task.run_id,
            task.label,
            task.attempt,
            extra=task.log_extra("task_cancelled"),
        )
        if entry.is_async:
            grace = self._settings.cancel_grace
            entry.timer = asyncio.get_running_loop().call_later(grace, self._give_up, entry)

    def _give_up(self, entry: _Running) -> None:
        if self._running.get(entry.task.key) is not entry or entry.job.done():
            return
        task = entry.task
        logger.info(
            "the handler of cancelled run=%s step=%s attempt=%d is still running after "
            "%gs (cancel_grace): cancelling it",
            task.run_id,
            task.label,
            task.attempt,
            self._settings.cancel_grace,
            extra=task.log_extra("handler_cancelled"),
        )
        entry.job.cancel()
