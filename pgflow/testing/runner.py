"""``FlowRunner``: run a flow to completion in a test, on the real SQL, without waiting.

::

    run = flow_runner.run(flow, {"url": "https://example.com"}, handlers={"website": fake})
    assert run.status == "completed"

:meth:`FlowRunner.run` deploys the flow (a copy running the fakes given in ``handlers``, see
:mod:`pgflow.testing.fakes`), starts a run, works on it with an in-process
:class:`~pgflow.Worker` until it finishes and returns the finished :class:`~pgflow.Run`.
Whenever the run only waits for time (retry backoff, ``start_delay``), it moves the test
clock (:mod:`pgflow.testing.clock`) instead of sleeping. A failed or cancelled run raises
what :meth:`pgflow.Client.wait` raises, unless ``raise_on_failure=False``.

Only for disposable databases: the test clock replaces a schema function.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Callable, Mapping, Sequence
from types import EllipsisType
from typing import Any

import psycopg
from psycopg.rows import dict_row

from pgflow.client import AsyncClient, Client
from pgflow.db.errors import wrap_db_errors
from pgflow.deploy import DeployResult, deploy_flows
from pgflow.dsl.flow import Flow
from pgflow.errors import ConfigurationError, RunCancelledError, RunFailedError, UnknownFlowError
from pgflow.models import Run, StepState
from pgflow.schedules import list_schedules
from pgflow.sql import query
from pgflow.testing import results
from pgflow.testing.clock import DatabaseClock
from pgflow.testing.fakes import HandlerKey, with_handlers
from pgflow.testing.idle import advance_when_idle
from pgflow.testing.results import TaskState
from pgflow.worker import Worker
from pgflow.worker.oneshot import run_flow

__all__ = ["FlowRunner"]

RunId = uuid.UUID | str
_WORKER_DEFAULTS: dict[str, Any] = {"poll_interval": 0.25, "shutdown_grace": 2.0}


class FlowRunner:
    """Runs flows to completion in a test database (see the module docstring).

    Args:
        database_url: a disposable database with the pgflow schema.
        clock: its test clock (installed); None: runs wait for real time.
        timeout: default seconds of wall time a run may take before ``RunTimeoutError``.
        **worker_options: defaults for the in-process :class:`~pgflow.Worker`
            (``concurrency``, ``env``, ...).
    """

    def __init__(
        self,
        database_url: str,
        *,
        clock: DatabaseClock | None = None,
        timeout: float | None = 30.0,
        **worker_options: Any,
    ) -> None:
        self.database_url = database_url
        self._clock = clock
        self.timeout = timeout
        self.worker_options = {**_WORKER_DEFAULTS, **worker_options}
        self._flows: dict[str, Flow] = {}
        self._conn: psycopg.Connection[dict[str, Any]] | None = None

    @property
    def clock(self) -> DatabaseClock:
        """The test database's clock: ``advance(seconds)``, ``freeze()``, ``unfreeze()``.

        Raises:
            ConfigurationError: this runner was made without a clock.
        """
        if self._clock is None:
            raise ConfigurationError(
                "this FlowRunner has no test clock",
                hint="use the flow_runner fixture, or pass clock=DatabaseClock(url) installed",
            )
        return self._clock

    def deploy(self, *flows: Flow) -> list[DeployResult]:
        """Deploy flows (a changed shape of a deployed slug is refused); remember them, so
        :meth:`run` also accepts their slugs."""
        for flow in flows:
            self._flows[flow.slug] = flow
        return self._deploy(flows)

    def _deploy(self, flows: Sequence[Flow]) -> list[DeployResult]:
        with psycopg.connect(self.database_url, autocommit=True) as conn:
            return deploy_flows(conn, flows)

    def run(
        self,
        flow: Flow | str,
        input: Any,
        *,
        handlers: Mapping[HandlerKey, Callable[..., Any]] | None = None,
        flows: Sequence[Flow] = (),
        timeout: float | EllipsisType | None = ...,
        raise_on_failure: bool = True,
    ) -> Run:
        """Run ``flow`` to completion and return the finished run (sync tests).

        Args:
            flow: the flow, or the slug of one given to this runner before.
            input: the run input (validated against the flow's input model).
            handlers: ``{step: fake}`` replacing single steps for this run (by slug or
                handler); a fake must bind like a handler of that step.
            flows: other flows the worker should serve too (deployed as well).
            timeout: seconds of wall time (default: the runner's); None: no limit.
            raise_on_failure: False returns a failed or cancelled run instead of raising.

        Raises:
            RunFailedError: the run failed (``run``, ``step_slug``, ``error_type`` ... set).
            RunCancelledError: the run was cancelled.
            RunTimeoutError: it did not finish within ``timeout``.
            DefinitionError: a key of ``handlers`` names no step, or a fake cannot bind.
            UnknownFlowError: ``flow`` is a slug this runner was never given.
            ConfigurationError: called inside a running event loop (use :meth:`arun`).
        """
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(
                self.arun(
                    flow, input, handlers=handlers, flows=flows, timeout=timeout,
                    raise_on_failure=raise_on_failure,
                )
            )  # fmt: skip
        raise ConfigurationError(
            "flow_runner.run() was called inside a running event loop",
            hint="in an async test, use `await flow_runner.arun(...)`",
        )

    async def arun(
        self,
        flow: Flow | str,
        input: Any,
        *,
        handlers: Mapping[HandlerKey, Callable[..., Any]] | None = None,
        flows: Sequence[Flow] = (),
        timeout: float | EllipsisType | None = ...,
        raise_on_failure: bool = True,
    ) -> Run:
        """Run ``flow`` to completion and return the finished run; see :meth:`run`."""
        original = self._known(flow)
        for given in (*flows, original):
            self._flows[given.slug] = given
        target = with_handlers(original, handlers or {})
        served = [target, *(f for f in flows if f.slug != target.slug)]
        await asyncio.to_thread(self._deploy, served)
        try:
            limit = self.timeout if isinstance(timeout, EllipsisType) else timeout
            return await self._work(target, input, served, limit)
        except (RunFailedError, RunCancelledError) as exc:
            if raise_on_failure or exc.run is None:
                raise
            return exc.run

    def tick(
        self, flow: Flow | str, name: str = "default", *, raise_on_failure: bool = True
    ) -> Run:
        """Start a schedule's next tick and run it to completion (sync tests).

        Deploys the flow with its schedules, moves the test clock to the schedule's next
        tick, starts that tick as workers do (``pgflow.start_scheduled``: the same run id,
        the schedule's input) and works on the run until it finishes.

        Raises:
            UnknownFlowError: the flow has no schedule named ``name``.
            RunFailedError, RunCancelledError: as :meth:`run` (unless ``raise_on_failure``).
        """
        return asyncio.run(self.atick(flow, name, raise_on_failure=raise_on_failure))

    async def atick(
        self, flow: Flow | str, name: str = "default", *, raise_on_failure: bool = True
    ) -> Run:
        """Start a schedule's next tick and run it to completion; see :meth:`tick`."""
        target = self._known(flow)
        self._flows[target.slug] = target
        await asyncio.to_thread(self._deploy, [target])
        run_id = await asyncio.to_thread(self._start_next_tick, target.slug, name)
        worker_id = uuid.uuid4()
        worker = Worker([target], self.database_url, worker_id=worker_id, **self.worker_options)
        working = asyncio.create_task(worker.run_async())
        follow = asyncio.create_task(
            advance_when_idle(self.database_url, run_id, [target.slug], worker_id)
        )
        try:
            async with AsyncClient(self.database_url) as client:
                return await client.wait(run_id, timeout=self.timeout)
        except (RunFailedError, RunCancelledError) as exc:
            if raise_on_failure or exc.run is None:
                raise
            return exc.run
        finally:
            follow.cancel()
            worker.stop()
            for task in (follow, working):
                with contextlib.suppress(BaseException):
                    await task

    def _start_next_tick(self, flow_slug: str, name: str) -> uuid.UUID:
        found = [s for s in list_schedules(self._connection(), flow_slug) if s.name == name]
        if not found or found[0].next_tick is None:
            raise UnknownFlowError(
                f"flow {flow_slug!r} has no active schedule named {name!r}",
                hint="define it with flow.schedule(cron, ..., name=...) and pass the flow",
                flow_slug=flow_slug,
            )
        tick = found[0].next_tick
        self.clock.advance_to(tick)
        with wrap_db_errors():
            row = (
                self._connection()
                .execute(
                    query("worker_start_scheduled"),
                    {"flow_slug": flow_slug, "schedule": name, "tick": tick, "skip": False},
                )
                .fetchone()
            )
        run_id = next(iter(row.values())) if row else None
        if not isinstance(run_id, uuid.UUID):
            raise ConfigurationError(
                f"the tick {tick.isoformat()} of schedule {name!r} of flow {flow_slug!r} "
                "was not started (a worker of this test may have started it first)",
                hint="stop other workers of the flow while using flow_runner.tick",
            )
        return run_id

    def get_run(self, run_id: RunId) -> Run:
        """The run with its steps, as it is now."""
        return Client(connection=self._connection()).get_run(run_id)

    def tasks(self, run: Run | RunId, step_slug: str | None = None) -> list[TaskState]:
        """The tasks of a run (of one step, in element order, when ``step_slug`` is given)."""
        run_id = run.run_id if isinstance(run, Run) else run
        with wrap_db_errors(conninfo=self.database_url):
            rows = self._connection().execute(query("test_run_tasks"), {"run_id": run_id})
            tasks = [TaskState.model_validate(row) for row in rows]
        return tasks if step_slug is None else results.step_tasks(tasks, step_slug)

    def attempts(self, run: Run | RunId, step_slug: str, task_index: int | None = None) -> int:
        """How many attempts a step made (all its tasks together), or one of its tasks."""
        return results.attempts(self.tasks(run), step_slug, task_index)

    def map_outputs(self, run: Run | RunId, step_slug: str) -> list[Any]:
        """A map step's results in element order (None where an element did not complete)."""
        return results.map_outputs(self.tasks(run), step_slug)

    def map_errors(self, run: Run | RunId, step_slug: str) -> dict[int, str]:
        """``{element index: last error}`` of a map step's elements that failed."""
        return results.map_errors(self.tasks(run), step_slug)

    def assert_skipped(self, run: Run, step_slug: str, reason: str | None = None) -> StepState:
        """Assert that a step was skipped, for a reason containing ``reason``."""
        return results.assert_skipped(run, step_slug, reason)

    def close(self) -> None:
        """Close the runner's and the clock's connections."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        if self._clock is not None:
            self._clock.close()

    def _known(self, flow: Flow | str) -> Flow:
        if isinstance(flow, Flow):
            return flow
        if isinstance(flow, str) and flow in self._flows:
            return self._flows[flow]
        known = ", ".join(sorted(self._flows)) or "none yet"
        raise UnknownFlowError(
            f"flow {flow!r} was not given to this flow runner (flows given: {known})",
            hint="pass the Flow object itself, e.g. flow_runner.run(my_flow, input), or "
            "deploy it first with flow_runner.deploy(my_flow)",
            flow_slug=flow if isinstance(flow, str) else None,
        )

    async def _work(self, flow: Flow, input: Any, served: list[Flow], timeout: float | None) -> Run:
        worker_id = uuid.uuid4()
        started: asyncio.Future[Run] = asyncio.get_running_loop().create_future()
        options = {**self.worker_options, "worker_id": worker_id}
        running = asyncio.create_task(
            run_flow(
                flow, input, database_url=self.database_url, flows=served, timeout=timeout,
                on_start=started.set_result, **options,
            )
        )  # fmt: skip
        await asyncio.wait({running, started}, return_when=asyncio.FIRST_COMPLETED)
        if self._clock is None or not started.done():
            return await running
        follow = advance_when_idle(
            self.database_url, started.result().run_id, [f.slug for f in served], worker_id
        )
        return await _first_failure(running, asyncio.create_task(follow))

    def _connection(self) -> psycopg.Connection[dict[str, Any]]:
        if self._conn is None or self._conn.closed:
            self._conn = psycopg.connect(self.database_url, autocommit=True, row_factory=dict_row)
        return self._conn


async def _first_failure(running: asyncio.Task[Run], follower: asyncio.Task[None]) -> Run:
    """The run's result; if the clock follower fails first, cancel the run and raise that."""
    try:
        await asyncio.wait({running, follower}, return_when=asyncio.FIRST_COMPLETED)
        if not running.done() and follower.exception() is not None:
            running.cancel()
            with contextlib.suppress(BaseException):
                await running
            follower.result()
        return await running
    finally:
        follower.cancel()
        with contextlib.suppress(BaseException):
            await follower
