"""``pgflow.Worker``: runs the handlers of a set of flows against Postgres.

A worker claims ready tasks of its flows in batches, runs their handlers (async ones on
the event loop, sync ones in a thread pool) and reports each result, fenced by attempt.
It wakes on ``LISTEN pgflow_tasks`` within milliseconds (over ``listen_url`` when the
database URL goes through PgBouncer; :mod:`pgflow.worker.wakeups`), polls as a fallback, records
heartbeats in ``pgflow.workers``, survives a database restart (reconnecting with backoff),
tells running handlers when their run is cancelled (``ctx.cancelled``) and stops
gracefully::

    worker = pgflow.Worker([flow], concurrency=20)
    worker.run()                    # blocks; SIGINT/SIGTERM stop it gracefully

    await worker.run_async()        # inside your own event loop; worker.stop() stops it
"""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import logging
import os
import socket
import uuid
from collections.abc import Callable, Coroutine, Iterable, Mapping
from typing import Any

from psycopg_pool import AsyncConnectionPool

from pgflow.blobs.stores import BlobStore
from pgflow.blobs.values import Stores, alimits
from pgflow.db.connection import aconnect, open_async_pool
from pgflow.db.errors import describe_conninfo, wrap_db_errors
from pgflow.db.retry import Health
from pgflow.db.target import resolve_database
from pgflow.dsl.flow import Flow
from pgflow.errors import ConfigurationError
from pgflow.sharding.shards import Shard
from pgflow.telemetry.hooks import TaskTelemetry, task_telemetry
from pgflow.worker.cancel import CancelWatch
from pgflow.worker.heartbeat import Heartbeat
from pgflow.worker.listener import WORKER_APPLICATION_NAME, TaskListener
from pgflow.worker.loop import Supervisor
from pgflow.worker.partitions import HistoryPartitions
from pgflow.worker.registration import TaskRegistration, registration_ttl
from pgflow.worker.reporter import Reporter
from pgflow.worker.retention import Retention
from pgflow.worker.runner import TaskRunner
from pgflow.worker.scheduler import Scheduler
from pgflow.worker.settings import DEFAULTS, WorkerSettings, served_steps
from pgflow.worker.shards import ShardLanes, worker_shards
from pgflow.worker.signals import StopSignals
from pgflow.worker.store import WorkerStore
from pgflow.worker.syncpool import LazySyncPool
from pgflow.worker.threads import DaemonThreadPool
from pgflow.worker.tombstones import TombstoneSweeper
from pgflow.worker.values import TaskValues
from pgflow.worker.wakeups import Wakeups, plan_wakeups

__all__ = ["Worker"]

logger = logging.getLogger("pgflow.worker")


class Worker:
    """Runs the tasks of some flows (see the module docstring).

    Args:
        flows: a flow or several; the worker claims tasks of these flows only.
        database_url: the Postgres URL; None resolves it like the CLI does
            (``PGFLOW_DATABASE_URL``, ``DATABASE_URL``, pyproject, embedded server).
        concurrency: the most handlers running at once.
        batch_size: the most tasks per claim (default: ``concurrency``).
        poll_interval: seconds between fallback polls while idle (notifications wake the
            worker sooner; polls pick up delayed retries).
        shutdown_grace: seconds running tasks get to finish after a stop request.
        cancel_grace: seconds an async handler whose task was cancelled (its run cancelled
            or failed) gets after ``ctx.cancelled`` is set, before its asyncio task is
            cancelled (docs/workers.md, "Cancellation").
        heartbeat_interval: seconds between heartbeats in ``pgflow.workers``.
        env: what handlers see as ``ctx.env`` (default: ``os.environ``).
        worker_id: this worker's id (default: a random UUID).
        pool: an open async pool to use instead of opening one (it is not closed).
        listen_url: a direct Postgres URL for LISTEN when ``database_url`` goes through a
            transaction-pooling PgBouncer (default: ``PGFLOW_LISTEN_URL``). Without one
            such a worker polls (docs/scaling.md).
        retry_base_delay: the first delay in seconds when retrying database calls.
        retention_interval: seconds between housekeeping passes: pruning runs past their
            flow's ``retention`` and creating the coming months' history partitions (one
            worker at a time; 0 turns both off in this worker).
        schedule_interval: seconds between passes that start due schedule ticks of the
            served flows (each tick once across all workers; 0 turns it off here).
        telemetry: what task attempts are reported to (default: OpenTelemetry when it is
            installed, else nothing; ``pgflow.telemetry.NO_TELEMETRY`` turns it off;
            docs/telemetry.md).
        steps: a worker pool: serve only the tasks of steps with these slugs (in any of
            the flows); None serves every step (docs/workers.md, "Worker pools").
        blob_store: an external store for large outputs (e.g.
            ``pgflow.blobs.FilesystemStore(path)``), also read from; None keeps them in
            Postgres (docs/large-values.md). The worker also deletes the store's values
            whose runs were deleted, every ``retention_interval``.
        shards: the URLs of the shards of a PL/Proxy set-up, in routing order, instead of
            ``database_url``: one claim loop per shard, each with ``concurrency`` slots,
            so a shard that is down stalls only its own runs (docs/sharding.md).

    Raises:
        ConfigurationError: no flows, two flows with one slug, a setting out of range, or
            a step slug none of the flows defines.
    """

    def __init__(
        self,
        flows: Flow | Iterable[Flow],
        database_url: str | None = None,
        *,
        concurrency: int = DEFAULTS.concurrency,
        batch_size: int | None = None,
        poll_interval: float = DEFAULTS.poll_interval,
        shutdown_grace: float = DEFAULTS.shutdown_grace,
        cancel_grace: float = DEFAULTS.cancel_grace,
        heartbeat_interval: float = DEFAULTS.heartbeat_interval,
        env: Mapping[str, str] | None = None,
        worker_id: uuid.UUID | None = None,
        pool: AsyncConnectionPool | None = None,
        listen_url: str | None = None,
        retry_base_delay: float = DEFAULTS.retry_base_delay,
        retention_interval: float = DEFAULTS.retention_interval,
        schedule_interval: float = DEFAULTS.schedule_interval,
        telemetry: TaskTelemetry | None = None,
        steps: Iterable[str] | None = None,
        blob_store: BlobStore | None = None,
        shards: Iterable[str] | None = None,
    ) -> None:
        self.flows = _flow_tuple(flows)
        self.shards = worker_shards(shards, database_url, pool, listen_url)
        self._lanes: ShardLanes | None = None
        self.blob_stores = Stores(blob_store)
        self.steps = served_steps(steps, self.flows)
        self.database_url = database_url
        self.settings = WorkerSettings(
            concurrency=concurrency,
            batch_size=batch_size or concurrency,
            poll_interval=poll_interval,
            shutdown_grace=shutdown_grace,
            cancel_grace=cancel_grace,
            heartbeat_interval=heartbeat_interval,
            retry_base_delay=retry_base_delay,
            retention_interval=retention_interval,
            schedule_interval=schedule_interval,
        )
        self.env: Mapping[str, str] = os.environ if env is None else env
        self.worker_id = worker_id or uuid.uuid4()
        self._pool = pool
        self.listen_url = listen_url
        self.telemetry = telemetry
        self._steps = {(s.flow_slug, s.slug): s for f in self.flows for s in f.steps}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._supervisor: Supervisor | None = None
        self._stop_request: bool | None = None  # None: not requested; True: immediate

    @property
    def flow_slugs(self) -> list[str]:
        """The slugs of the flows this worker serves."""
        return [f.slug for f in self.flows]

    def run(self, *, until_idle: bool = False, max_tasks: int | None = None) -> None:
        """Run until stopped (SIGINT/SIGTERM, :meth:`stop`), blocking this thread.

        The first signal stops gracefully; a second one stops at once. Arguments as for
        :meth:`run_async`.

        Raises:
            ConfigurationError: called from a running event loop (use :meth:`run_async`).
            DatabaseError: the database cannot be reached at start-up.
        """
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            pass
        else:
            raise ConfigurationError(
                "Worker.run() was called inside a running event loop",
                hint="use `await worker.run_async()` there instead",
            )
        asyncio.run(self.run_async(until_idle=until_idle, max_tasks=max_tasks, handle_signals=True))

    async def run_async(
        self,
        *,
        until_idle: bool = False,
        max_tasks: int | None = None,
        handle_signals: bool = False,
    ) -> None:
        """Run on the current event loop until stopped.

        Args:
            until_idle: also stop once nothing is running and nothing is claimable
                (tests, one-off scripts).
            max_tasks: also stop after starting this many tasks.
            handle_signals: stop gracefully on SIGINT/SIGTERM (main thread only).

        Raises:
            DatabaseError: the database (with shards: every shard) cannot be reached at
                start-up.
            SchemaError: the pgflow schema is not installed (with shards: the shards that
                answer have different versions, or one an older version than this package).
        """
        if self.shards is not None:
            await self._run_shards(until_idle, max_tasks, handle_signals)
            return
        self._loop = asyncio.get_running_loop()
        try:
            async with wrap_db_errors():
                pool, conninfo = await self._open_pool()
                try:
                    await self._serve(pool, conninfo, until_idle, max_tasks, handle_signals)
                finally:
                    if self._pool is None:
                        await pool.close()
        finally:
            self._loop, self._supervisor, self._stop_request = None, None, None

    def stop(self, *, immediate: bool = False) -> None:
        """Ask the worker to stop; safe from any thread, and before it starts.

        Args:
            immediate: do not wait for running tasks: cancel them and release them.
        """
        self._stop_request = bool(self._stop_request) or immediate
        if self._lanes is not None:
            self._lanes.stop(immediate=immediate)
            return
        loop, supervisor = self._loop, self._supervisor
        if loop is None or supervisor is None:
            return
        if _in_loop(loop):
            supervisor.request_stop(immediate=immediate)
        else:
            loop.call_soon_threadsafe(lambda: supervisor.request_stop(immediate=immediate))

    async def _run_shards(
        self, until_idle: bool, max_tasks: int | None, handle_signals: bool
    ) -> None:
        """One lane per shard (:mod:`pgflow.worker.shards`), until stopped."""
        assert self.shards is not None
        lanes = self._lanes = ShardLanes(
            self.shards, self._for_shard, self.settings.retry_base_delay
        )
        try:
            if self._stop_request is not None:
                lanes.stop(immediate=self._stop_request)
            with StopSignals(self.stop, handle_signals):
                await lanes.run(until_idle=until_idle, max_tasks=max_tasks)
        finally:
            self._lanes, self._stop_request = None, None

    def _for_shard(self, shard: Shard) -> Worker:
        """This worker's twin on one shard (schedules fire from the first shard only)."""
        lane = copy.copy(self)
        lane.database_url, lane.shards, lane._lanes = shard.url, None, None
        if shard.index > 0:
            lane.settings = dataclasses.replace(self.settings, schedule_interval=0)
        return lane

    async def _open_pool(self) -> tuple[AsyncConnectionPool, str]:
        if self._pool is not None:
            return self._pool, str(self._pool.conninfo)
        url = self.database_url or resolve_database(None).url
        await (await aconnect(url)).close()  # fail at once when unreachable (a pool retries)
        size = self.settings.concurrency + 3  # + claims, reports, heartbeats
        pool = await open_async_pool(
            url, min_size=2, max_size=size, application_name=WORKER_APPLICATION_NAME
        )
        return pool, url

    async def _serve(
        self,
        pool: AsyncConnectionPool,
        conninfo: str,
        until_idle: bool,
        max_tasks: int | None,
        handle_signals: bool,
    ) -> None:
        health = Health()
        wakeups = await plan_wakeups(pool, conninfo, self.listen_url)
        settings = wakeups.settings(self.settings)
        maps = [(f.slug, s.slug) for f in self.flows for s in f.steps if s.step_type == "map"]
        store = WorkerStore(pool, self.worker_id, self.flow_slugs, maps, self.steps)
        registration = self._registration(store, wakeups, lambda: supervisor.resync())
        heartbeat = Heartbeat(
            store, self.settings.heartbeat_interval, health, *_host(), registration
        )
        await heartbeat.register()
        executor = DaemonThreadPool(self.settings.concurrency, thread_name_prefix="pgflow")
        sync_pool = LazySyncPool(conninfo, self.settings.concurrency)
        cancels = CancelWatch(store, settings, health)
        async with pool.connection() as conn:
            limits = await alimits(conn)
        values = TaskValues(pool, sync_pool.connection, limits, self.blob_stores, self._steps)
        supervisor = self._supervisor = self._supervise(
            settings, store, health, executor, sync_pool, cancels, wakeups, values, registration
        )
        listener = wakeups.listener(
            self.flow_slugs, supervisor.wake, health, settings, cancels.notified, cancels.listening,
            registration.register if registration is not None else None,
        )  # fmt: skip
        retention = Retention(store, self.settings.retention_interval)
        partitions = HistoryPartitions(store, self.settings.retention_interval)
        scheduler = Scheduler(store, self.settings.schedule_interval)
        jobs = (
            heartbeat.run(), supervisor.reporter_task(), cancels.run(), retention.run(),
            partitions.run(), scheduler.run(), *([listener.run()] if listener else []),
            *self._sweeps(store),
        )  # fmt: skip
        background = [asyncio.create_task(job) for job in jobs]
        try:
            with StopSignals(self.stop, handle_signals):
                if listener is not None:
                    await _first_listen(listener)
                self._announce(conninfo, wakeups)
                wakeups.warn_if_polling(settings.poll_interval)
                await self._claim(supervisor, until_idle, max_tasks)
        finally:
            await _cancel(background)
            executor.shutdown(wait=False, cancel_futures=True)
            await asyncio.to_thread(sync_pool.close)

    async def _claim(self, supervisor: Supervisor, until_idle: bool, max_tasks: int | None) -> None:
        if self._stop_request is not None:
            supervisor.request_stop(immediate=self._stop_request)
        try:
            await supervisor.claim_loop(until_idle=until_idle, max_tasks=max_tasks)
        except asyncio.CancelledError:
            supervisor.request_stop(immediate=True)
            raise
        finally:
            await supervisor.shut_down()

    def _supervise(
        self,
        settings: WorkerSettings,
        store: WorkerStore,
        health: Health,
        executor: DaemonThreadPool,
        sync_pool: LazySyncPool,
        cancels: CancelWatch,
        wakeups: Wakeups,
        values: TaskValues,
        registration: TaskRegistration | None,
    ) -> Supervisor:
        runner = TaskRunner(
            self._steps, executor, self.env, store.pool.connection, sync_pool.connection, values
        )
        reporter = Reporter(
            store, health, backoff_base=settings.retry_base_delay,
            on_failure=store.pool.check,
            # without LISTEN, stored reports may have readied dependents; with limits, they
            # freed slots that no notification announces: claim again either way
            on_stored=None if wakeups.listen_url and not self._limited() else (
                lambda: supervisor.wake()),
            on_reported=lambda batch, refused: supervisor.reported(batch, refused),
        )  # fmt: skip
        telemetry = task_telemetry(self.telemetry, self.worker_id)
        supervisor = Supervisor(
            settings, store, runner, reporter, health, cancels, telemetry, registration
        )
        return supervisor

    def _registration(
        self, store: WorkerStore, wakeups: Wakeups, on_registered: Callable[[], None]
    ) -> TaskRegistration | None:
        """A worker that LISTENs registers: only registered listeners are notified."""
        if wakeups.listen_url is None:
            return None
        ttl = registration_ttl(self.settings.heartbeat_interval)
        return TaskRegistration(store, ttl, on_registered)

    def _limited(self) -> bool:
        return any(flow.limits for flow in self.flows)

    def _sweeps(self, store: WorkerStore) -> list[Coroutine[Any, Any, None]]:
        """Deleting an external store's values whose runs are gone (none without one)."""
        external = self.blob_stores.external
        if external is None:
            return []
        return [TombstoneSweeper(store, external, self.settings.retention_interval).run()]

    def _announce(self, conninfo: str, wakeups: Wakeups) -> None:
        logger.info(
            "worker %s started: flows=%s%s concurrency=%d database=%s%s %s",
            self.worker_id,
            ",".join(self.flow_slugs),
            "" if self.steps is None else f" steps={','.join(self.steps)}",
            self.settings.concurrency,
            describe_conninfo(conninfo),
            " (through a pooler)" if wakeups.pooled else "",
            wakeups.describe(),
            extra={"action": "worker_started", "worker_id": str(self.worker_id)},
        )


def _flow_tuple(flows: Flow | Iterable[Flow]) -> tuple[Flow, ...]:
    result = (flows,) if isinstance(flows, Flow) else tuple(flows)
    if not result:
        raise ConfigurationError(
            "a Worker needs at least one flow", hint="pass Worker([flow, ...])"
        )
    slugs = [f.slug for f in result]
    duplicates = sorted({s for s in slugs if slugs.count(s) > 1})
    if duplicates:
        raise ConfigurationError(
            f"two flows passed to the Worker share the slug {duplicates[0]!r}",
            hint="give each flow its own slug (flows are immutable: use e.g. a _v2 suffix)",
        )
    for flow in result:
        if not isinstance(flow, Flow):
            raise ConfigurationError(
                f"Worker expected Flow objects, got {type(flow).__name__}",
                hint="pass the Flow instances your module defines",
            )
    return result


def _host() -> tuple[str, int]:
    return socket.gethostname(), os.getpid()


def _in_loop(loop: asyncio.AbstractEventLoop) -> bool:
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False


async def _first_listen(listener: TaskListener, timeout: float = 5.0) -> None:
    """Wait until LISTEN is in place, so no notification is missed after the first claim."""
    try:
        async with asyncio.timeout(timeout):
            await listener.ready.wait()
    except TimeoutError:
        logger.warning("LISTEN is not in place yet; polling until it is")


async def _cancel(tasks: list[asyncio.Task[Any]]) -> None:
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
