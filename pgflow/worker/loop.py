"""The claim loop and graceful shutdown of one running worker.

The loop keeps at most ``concurrency`` tasks in flight. It claims ``min(free slots,
batch_size)`` tasks whenever a slot is free and there may be work: after a claim that
filled its request, after a ``pgflow_tasks`` notification, or when the fallback poll
interval passes. A finished task frees its slot at once, so one slow task never holds up
the next claim. Everything runs on one event loop, so the flags need no locks.

Shutdown: stop claiming, set every running task's ``ctx.shutdown``, give them the grace
period to finish, cancel what is left, store every pending report, then release the tasks
this worker still holds so another worker takes them at once.

A task cancelled in Postgres while its handler runs (:mod:`pgflow.worker.cancel`) is not
reported: its result is discarded, with one INFO line saying so.

A registered worker (:mod:`pgflow.worker.registration`) is notified only while its last
claim was short. When it starts waiting again (its first short claim after registering or
after a full claim), the loop runs the barrier in the background and claims once more when
it returns, so a task made claimable meanwhile without a notification is not missed.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import time
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from pgflow.db.retry import Backoff, Health, retrying
from pgflow.dsl.context import Context
from pgflow.telemetry.hooks import NO_TELEMETRY, TaskTelemetry
from pgflow.worker.cancel import CancelWatch
from pgflow.worker.registration import TaskRegistration
from pgflow.worker.reporter import Reporter
from pgflow.worker.runner import Attempt, TaskRunner
from pgflow.worker.settings import WorkerSettings
from pgflow.worker.store import AttemptKey, ClaimedTask, Report, WorkerStore

__all__ = ["Supervisor"]

logger = logging.getLogger("pgflow.worker")


class _Stopped(Exception):
    """Raised out of a retry loop when the worker stops."""


class Supervisor:
    """Claims tasks, runs them, and shuts down gracefully (see the module docstring)."""

    def __init__(
        self,
        settings: WorkerSettings,
        store: WorkerStore,
        runner: TaskRunner,
        reporter: Reporter,
        health: Health,
        cancels: CancelWatch,
        telemetry: TaskTelemetry = NO_TELEMETRY,
        registration: TaskRegistration | None = None,
    ) -> None:
        self._settings = settings
        self._registration = registration
        self._synced = True  # no barrier owed (registering owes one: see resync)
        self._sync_job: asyncio.Task[None] | None = None
        self._telemetry = telemetry
        self._cancels = cancels
        self._store = store
        self._runner = runner
        self._reporter = reporter
        self._health = health
        self._in_flight: dict[asyncio.Task[None], Context] = {}
        self._signal = asyncio.Event()
        self._notified = False
        self._stopping = False
        self._immediate = False
        self.started = 0
        self.completed = 0
        self.failed = 0

    async def reporter_task(self) -> None:
        """Run the reporter until cancelled (a background task of the worker)."""
        await self._reporter.run()

    def wake(self) -> None:
        """Tasks may be claimable (a notification arrived, or the listener reconnected)."""
        self._notified = True
        self._signal.set()

    def resync(self) -> None:
        """The worker (re)registered as a task listener: a barrier is owed."""
        self._synced = False
        self.wake()

    def request_stop(self, *, immediate: bool = False) -> None:
        """Stop claiming; with ``immediate``, do not wait for running tasks either."""
        self._stopping = True
        self._immediate = self._immediate or immediate
        self._signal.set()

    async def claim_loop(self, *, until_idle: bool = False, max_tasks: int | None = None) -> None:
        """Claim and start tasks until stopped (or idle / ``max_tasks`` reached)."""
        more, idle_checked = True, False
        while not self._stopping:
            self._signal.clear()
            free = self._settings.concurrency - len(self._in_flight)
            budget = self._settings.batch_size if max_tasks is None else max_tasks - self.started
            if budget <= 0:
                break
            if free > 0 and (more or self._notified):
                self._notified = False
                wanted = min(free, self._settings.batch_size, budget)
                tasks, leased_at = await self._claim(wanted)
                more, idle_checked = len(tasks) == wanted, idle_checked and not tasks
                self._after_claim(full=more)
                self._start(tasks, leased_at)
            elif until_idle and not self._in_flight:
                if idle_checked:
                    break
                await self._reporter.wait_idle()  # stored reports may have readied dependents
                more, idle_checked = True, True
            elif not await self._wait(self._settings.poll_interval if free > 0 else None):
                more = True  # the fallback poll: delayed retries and missed notifications

    async def _wait(self, timeout: float | None) -> bool:
        """Wait for a signal; False when ``timeout`` passed first."""
        try:
            async with asyncio.timeout(timeout):
                await self._signal.wait()
        except TimeoutError:
            return False
        return True

    async def _claim(self, wanted: int) -> tuple[list[ClaimedTask], float]:
        """The claimed tasks, and the event loop's time when the claim that leased them was
        sent (see :meth:`WorkerStore.claim`)."""
        try:
            return await retrying(
                lambda: self._store.claim(wanted),
                component="claims",
                health=self._health,
                backoff=Backoff(self._settings.retry_base_delay),
                on_failure=self._after_failure,
            )
        except _Stopped:
            return [], asyncio.get_running_loop().time()

    def _after_claim(self, *, full: bool) -> None:
        """A full claim marked the worker not waiting; the next short one owes a barrier."""
        registration = self._registration
        if registration is None or not registration.active or self._stopping:
            return
        if full:
            self._synced = False
        elif not self._synced and self._sync_job is None:
            self._synced = True
            self._sync_job = asyncio.create_task(self._sync(registration), name="pgflow sync")

    async def _sync(self, registration: TaskRegistration) -> None:
        """The barrier, then one more claim (a failed barrier is owed again)."""
        try:
            synced = await registration.sync()
        except Exception as exc:  # noqa: BLE001 - the next claim meets the same failure
            logger.debug("the task listener barrier failed: %s", exc)
            synced = False
        finally:
            self._sync_job = None
        if not synced:
            self._synced = False
        self.wake()

    async def _after_failure(self) -> None:
        if self._stopping:
            raise _Stopped
        await self._store.pool.check()

    def _start(self, tasks: list[ClaimedTask], leased_at: float) -> None:
        for task in tasks:
            ctx = self._runner.context(task)
            job = asyncio.create_task(
                self._execute(task, ctx, leased_at), name=f"pgflow {task.label}"
            )
            self._in_flight[job] = ctx
            self._cancels.track(task, ctx, job, self._runner.is_async(task))
            job.add_done_callback(self._finished)
            self.started += 1

    def _finished(self, job: asyncio.Task[None]) -> None:
        self._in_flight.pop(job, None)
        self._signal.set()
        if not job.cancelled() and job.exception() is not None:
            logger.error("task runner crashed", exc_info=job.exception())

    async def _execute(self, task: ClaimedTask, ctx: Context, leased_at: float) -> None:
        with self._telemetry.attempt(task) as observed:  # docs/telemetry.md
            try:
                attempt = await self._runner.run(task, ctx, leased_at)
            finally:
                self._cancels.forget(task)
            error = attempt.report.error
            observed.finished(error, attempt.elapsed, discarded=ctx.cancelled.is_set())
        if ctx.cancelled.is_set():
            self._cancels.discard(attempt.report)
        else:  # logged once stored (see reported): the database may still refuse it
            self._reporter.submit(replace(attempt.report, elapsed=attempt.elapsed))
        if attempt.lingering is not None:
            await _outlive(attempt)

    def reported(self, batch: Sequence[Report], refused: set[AttemptKey]) -> None:
        """Log each stored report; a refused one (its task was cancelled or taken over
        between the handler's return and the report) as discarded, not as completed."""
        for report in batch:
            if report.task.key in refused:
                self._cancels.discard(report)
            else:
                self._log(report)

    def _log(self, report: Report) -> None:
        task, error = report.task, report.error
        if error is None:
            self.completed += 1
        else:
            self.failed += 1
        if not logger.isEnabledFor(logging.INFO if error is None else logging.WARNING):
            return  # building the record's fields is measurable at thousands of tasks/s
        ms = round(report.elapsed * 1000)
        extra = _extra(task, "task_failed" if error else "task_completed", duration_ms=ms)
        if error is None:
            logger.info(
                "task completed run=%s step=%s attempt=%d in %dms",
                task.run_id,
                task.label,
                task.attempt,
                ms,
                extra=extra,
            )
            return
        first_line = (error.message.strip().splitlines() or [""])[0]
        logger.warning(
            "task failed run=%s step=%s attempt=%d in %dms: %s: %s",
            task.run_id,
            task.label,
            task.attempt,
            ms,
            error.type,
            first_line,
            extra={**extra, "error_type": error.type},
        )

    async def shut_down(self) -> None:
        """Finish or cancel running tasks, store all reports, release what is left."""
        self._stopping = True
        if self._sync_job is not None:
            self._sync_job.cancel()
        for ctx in self._in_flight.values():
            ctx.shutdown.set()
        await self._wait_in_flight()
        await self._cancel_in_flight()
        await self._store_reports()
        await self._release()

    async def _wait_in_flight(self) -> None:
        if not self._in_flight or self._immediate:
            return
        grace = self._settings.shutdown_grace
        logger.info(
            "stopping: waiting up to %gs for %d running task(s)",
            grace,
            len(self._in_flight),
            extra={"action": "worker_stopping", "running": len(self._in_flight)},
        )
        deadline = time.monotonic() + grace
        while self._in_flight and not self._immediate:
            self._signal.clear()
            if not await self._wait(max(0.0, deadline - time.monotonic())):
                break

    async def _cancel_in_flight(self) -> None:
        if not self._in_flight:
            return
        logger.warning(
            "stopping now: cancelling %d running task(s); they will be released",
            len(self._in_flight),
            extra={"action": "tasks_cancelled", "running": len(self._in_flight)},
        )
        jobs = list(self._in_flight)
        for job in jobs:
            job.cancel()
        await asyncio.wait(jobs, timeout=1.0)

    async def _store_reports(self) -> None:
        timeout = max(self._settings.shutdown_grace, 5.0)
        try:
            async with asyncio.timeout(timeout):
                await self._reporter.wait_idle()
        except TimeoutError:
            lost = self._reporter.unreported()
            logger.error(
                "could not store %d task result(s) within %gs; those tasks run again once "
                "their lease expires",
                len(lost),
                timeout,
                extra={"action": "reports_lost", "count": len(lost)},
            )

    async def _release(self) -> None:
        try:
            async with asyncio.timeout(5.0):
                released = await self._store.release()
                await self._store.stopped()
        except Exception as exc:  # noqa: BLE001 - leases expire anyway
            logger.warning(
                "could not release this worker's tasks (%s); they run again once their "
                "lease expires",
                exc,
                extra={"action": "release_failed"},
            )
            return
        if released:
            logger.info(
                "released %d unfinished task(s) for other workers",
                released,
                extra={"action": "tasks_released", "count": released},
            )


def _extra(task: ClaimedTask, action: str, **more: Any) -> dict[str, Any]:
    return task.log_extra(action, **more)


async def _outlive(attempt: Attempt) -> None:
    """Keep the slot of a sync handler that ignored its timeout until its thread returns."""
    future: concurrent.futures.Future[Any] | None = attempt.lingering
    if future is None:
        return
    task = attempt.report.task
    logger.warning(
        "the sync handler of run=%s step=%s is still running after its timeout; its slot "
        "stays busy until it returns (check ctx.shutdown in long sync handlers)",
        task.run_id,
        task.label,
        extra=_extra(task, "handler_lingering"),
    )
    with contextlib.suppress(Exception):
        await asyncio.wrap_future(future)
