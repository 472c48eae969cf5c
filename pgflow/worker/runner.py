"""Running one claimed task: its context, its arguments, its handler under a timeout.

The runner turns a :class:`~pgflow.worker.store.ClaimedTask` into a
:class:`~pgflow.worker.store.Report` (an output, or an error with the exception's qualified
type, message and formatted traceback). It touches the database only through
:class:`~pgflow.worker.values.TaskValues`: values stored by reference are fetched before the
handler runs (the run input only when the handler asks for it), and a large output is
stored before it is reported. Async handlers run on the event loop,
sync handlers in the worker's thread pool. A handler's time ends before its task's lease
does (:func:`handler_deadline`), so that a timed-out attempt is stored as ``TimeoutError``
before any claim can find the lease expired. A handler raising ``SystemExit`` (or, from a
sync handler, ``KeyboardInterrupt``; from an async one, a ``CancelledError`` the worker did
not cause) fails its attempt instead of stopping the worker. A sync handler cannot be
killed when its timeout passes: the attempt is reported as failed at once, its context's
``shutdown`` event is set so a cooperative handler can stop, and the thread keeps its slot
until it returns. A task whose input the claim could not decode fails with
``InputDecodeError`` without calling its handler.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import functools
import logging
import time
import traceback
from collections.abc import Callable, Mapping
from contextlib import AbstractAsyncContextManager, AbstractContextManager
from dataclasses import dataclass
from typing import Any

import psycopg

from pgflow._decode import Undecodable
from pgflow.dsl.context import Context, Flag
from pgflow.dsl.step import StepDefinition
from pgflow.errors import DefinitionError, InputDecodeError
from pgflow.worker.store import ClaimedTask, Report, TaskError
from pgflow.worker.values import OutputTooLarge, TaskValues

__all__ = ["Attempt", "TaskRunner", "handler_deadline", "report_margin", "task_error"]

task_logger = logging.getLogger("pgflow.task")

Connect = Callable[[], AbstractAsyncContextManager[psycopg.AsyncConnection[Any]]]
SyncConnect = Callable[[], AbstractContextManager[psycopg.Connection[Any]]]
_MAX_MESSAGE = 8_000
_MAX_TRACEBACK = 64_000
_MARGIN_SHARE = 0.1  # of the timeout, kept to store a timed-out attempt's report
_MARGIN_MIN = 0.25  # seconds: a commit can take that long on a busy disk
_MARGIN_MAX = 1.0  # seconds


def report_margin(timeout: float) -> float:
    """Seconds kept between a handler's deadline and its lease's end, to store the report of
    a timed-out attempt: a tenth of the timeout, at least a quarter of a second (a commit
    can wait that long on a busy disk), at most one second, and never over half the
    timeout."""
    return min(max(timeout * _MARGIN_SHARE, _MARGIN_MIN), _MARGIN_MAX, timeout / 2)


def handler_deadline(timeout: float, leased_at: float | None, now: float) -> float:
    """When a handler's time is up, on the clock of ``now`` (the event loop's).

    A claim leases its task until the database's ``now() + timeout``, and the handler
    starts later (the claim's round trip, fetching stored inputs). Timed from its start, it
    would be reported after the lease ended, and a claim by any worker in that gap would
    expire the lease and store ``LeaseExpired`` instead of the ``TimeoutError``. So with
    ``leased_at`` (when this process sent the claim: no later than the transaction that
    set the lease began) the deadline is the lease's end less :func:`report_margin`.
    Without it (no lease to beat), ``timeout`` seconds from ``now``.
    """
    if leased_at is None:
        return now + timeout
    return leased_at + timeout - report_margin(timeout)


@dataclass(frozen=True, slots=True)
class Attempt:
    """What running one task produced.

    Attributes:
        report: the output or the error, ready to be stored.
        elapsed: seconds from the start of argument parsing to the result.
        lingering: a sync handler's thread still running after its timeout, or None.
    """

    report: Report
    elapsed: float
    lingering: concurrent.futures.Future[Any] | None = None


class _HandlerTimeout(Exception):
    def __init__(self, step: StepDefinition, lingering: concurrent.futures.Future[Any] | None):
        super().__init__(
            f"{step.where}: the handler did not finish within its timeout of {step.timeout} s"
        )
        self.lingering = lingering


class _HandlerExit(Exception):
    """A handler raised ``SystemExit``, ``KeyboardInterrupt`` or ``CancelledError`` itself.

    Those derive from ``BaseException`` and would otherwise stop the whole worker (or end
    the task without a report); raised by a handler they only fail its attempt.
    """

    def __init__(self, original: BaseException) -> None:
        super().__init__(repr(original))
        self.original = original


def _stopping() -> bool:
    """Whether the running asyncio task is being cancelled (the worker is stopping)."""
    current = asyncio.current_task()
    return current is not None and current.cancelling() > 0


class TaskRunner:
    """Runs handlers of the steps of a set of flows.

    Args:
        steps: every step this worker can run, by ``(flow_slug, step_slug)``.
        executor: the thread pool for sync handlers.
        env: the environment handlers see as ``ctx.env``.
        connect: what ``ctx.connection()`` calls (borrows from the worker's pool).
        sync_connect: what ``ctx.sync_connection()`` calls (for sync handlers).
        values: fetches stored values and stores large outputs (None: every value is
            taken as it was claimed, as in unit tests without a database).
    """

    def __init__(
        self,
        steps: Mapping[tuple[str, str], StepDefinition],
        executor: concurrent.futures.Executor,
        env: Mapping[str, str],
        connect: Connect,
        sync_connect: SyncConnect | None = None,
        values: TaskValues | None = None,
    ) -> None:
        self._steps = steps
        self._executor = executor
        self._env = env
        self._connect = connect
        self._sync_connect = sync_connect
        self._values = values

    def context(self, task: ClaimedTask) -> Context:
        """Build the :class:`Context` a task's handler receives."""
        fields = {
            "run_id": str(task.run_id),
            "flow_slug": task.flow_slug,
            "step_slug": task.step_slug,
            "task_index": task.task_index,
            "attempt": task.attempt,
        }
        values = self._values
        lazy = values is not None and not values.flow_input_known(task)
        return Context(
            run_id=task.run_id,
            flow_slug=task.flow_slug,
            step_slug=task.step_slug,
            task_index=task.task_index,
            attempt=task.attempt,
            flow_input=None if lazy else task.flow_input,
            env=self._env,
            logger=logging.LoggerAdapter(task_logger, fields),
            shutdown=Flag(),
            cancelled=Flag(),
            _connect=self._connect,
            _load_flow_input=(lambda: values.flow_input_sync(task)) if lazy and values else None,
            _aload_flow_input=(lambda: values.flow_input(task)) if lazy and values else None,
            **({"_sync_connect": self._sync_connect} if self._sync_connect else {}),
        )

    async def run(self, task: ClaimedTask, ctx: Context, leased_at: float | None = None) -> Attempt:
        """Run the task's handler and return its report; never raises but on cancellation.

        ``leased_at``: the event loop's time when the claim that leased the task was sent;
        the handler's time then ends before the lease does (:func:`handler_deadline`).
        """
        started = time.perf_counter()
        try:
            step = self._step(task)
            _check_decoded(task)
            arguments = await self._arguments(step, task, ctx)
            now = asyncio.get_running_loop().time()
            deadline = handler_deadline(step.timeout, leased_at, now)
            value = await self._call(step, arguments, ctx, deadline)
            report = await self._report(task, step.dump_output(value))
        except OutputTooLarge as exc:  # no traceback: the value, not the code, is wrong
            report = Report(task, error=TaskError("OutputTooLarge", _clean(str(exc), _MAX_MESSAGE)))
        except _HandlerTimeout as exc:
            error = TaskError("TimeoutError", str(exc))
            return Attempt(Report(task, error=error), time.perf_counter() - started, exc.lingering)
        except _HandlerExit as exc:
            report = Report(task, error=task_error(exc.original))
        except InputDecodeError as exc:  # no traceback: the value, not the code, is wrong
            report = Report(task, error=TaskError(InputDecodeError.__name__, str(exc)))
        except Exception as exc:  # noqa: BLE001 - any handler error fails the attempt
            report = Report(task, error=task_error(exc))
        return Attempt(report, time.perf_counter() - started)

    async def _arguments(
        self, step: StepDefinition, task: ClaimedTask, ctx: Context
    ) -> dict[str, Any]:
        if self._values is None:
            return step.build_arguments(task.input, task.flow_input, ctx)
        sources = {b.source for b in step.parameters}
        uses_input = bool(sources & {"element", "dependency", "extra"})
        task_input = await self._values.task_input(task) if uses_input else task.input
        flow_input = None
        if "input" in sources:  # a root single step's input is the run input: fetched once
            is_run_input = uses_input and not step.deps and step.step_type == "single"
            flow_input = task_input if is_run_input else await ctx.load_flow_input()
        return step.build_arguments(task_input, flow_input, ctx)

    async def _report(self, task: ClaimedTask, output: Any) -> Report:
        if self._values is None:
            return Report(task, output=output)
        stored, encoded = await self._values.output(task, output)
        return Report(task, output=stored, encoded=encoded)

    def is_async(self, task: ClaimedTask) -> bool:
        """Whether the task's handler is async (False for a step this worker lacks)."""
        step = self._steps.get((task.flow_slug, task.step_slug))
        return step is not None and step.is_async

    def _step(self, task: ClaimedTask) -> StepDefinition:
        step = self._steps.get((task.flow_slug, task.step_slug))
        if step is None:
            raise DefinitionError(
                f"step {task.step_slug!r} of flow {task.flow_slug!r} is deployed, "
                "but this worker's code does not define it",
                hint="deploy the flow from the same code the workers run (pgflow deploy)",
            )
        return step

    async def _call(
        self, step: StepDefinition, arguments: dict[str, Any], ctx: Context, deadline: float
    ) -> Any:
        if step.is_async:
            return await self._call_async(step, arguments, ctx, deadline)
        return await self._call_sync(step, arguments, ctx, deadline)

    async def _call_async(
        self, step: StepDefinition, arguments: dict[str, Any], ctx: Context, deadline: float
    ) -> Any:
        try:
            async with asyncio.timeout_at(deadline) as scope:
                return await step.handler(**arguments)
        except TimeoutError:
            if not scope.expired():
                raise  # the handler's own TimeoutError
            ctx.shutdown.set()
            raise _HandlerTimeout(step, None) from None
        except SystemExit as exc:  # sys.exit() in a handler; signals never raise it
            raise _HandlerExit(exc) from exc
        except asyncio.CancelledError as exc:
            if _stopping():
                raise  # the worker cancelled the task: not the handler's doing
            raise _HandlerExit(exc) from exc

    async def _call_sync(
        self, step: StepDefinition, arguments: dict[str, Any], ctx: Context, deadline: float
    ) -> Any:
        call = functools.partial(step.handler, **arguments)
        future = self._executor.submit(contextvars.copy_context().run, call)
        try:
            async with asyncio.timeout_at(deadline) as scope:
                return await asyncio.wrap_future(future)
        except TimeoutError:
            if not scope.expired():
                raise
            ctx.shutdown.set()
            raise _HandlerTimeout(step, None if future.done() else future) from None
        except (SystemExit, KeyboardInterrupt, asyncio.CancelledError) as exc:
            if not (future.done() and not future.cancelled() and future.exception() is exc):
                raise  # not from the handler's thread: a real interrupt or cancellation
            raise _HandlerExit(exc) from exc


def _check_decoded(task: ClaimedTask) -> None:
    """Refuse a task whose input or flow input the claim could not decode.

    Raises:
        InputDecodeError: naming the value, the task and what to do.
    """
    for value, what in ((task.input, "input"), (task.flow_input, "flow input")):
        if isinstance(value, Undecodable):
            raise InputDecodeError(
                f"the {what} of task {task.task_index} of step {task.step_slug!r} of flow "
                f"{task.flow_slug!r} (run {task.run_id}) cannot be decoded: {value.reason} "
                f"({value.size} bytes of JSON); the handler was not called",
                hint="every attempt fails the same way: fix what produced the value (the run "
                "input, or the output of a step this one depends on) and start a new run",
                flow_slug=task.flow_slug,
                step_slug=task.step_slug,
                task_index=task.task_index,
                reason=value.reason,
            )


def task_error(exc: BaseException) -> TaskError:
    """Describe an exception for storage: qualified type, message and traceback."""
    kind = type(exc)
    name = kind.__qualname__
    if kind.__module__ not in ("builtins", "__main__"):
        name = f"{kind.__module__}.{name}"
    message = str(exc) or repr(exc)
    trace = "".join(traceback.format_exception(exc))
    return TaskError(
        _clean(name, 500), _clean(message, _MAX_MESSAGE), _clean(trace, _MAX_TRACEBACK)
    )


def _clean(text: str, limit: int) -> str:
    """Postgres text cannot hold NUL characters; very long values keep their end."""
    text = text.replace("\x00", "\\x00")
    if len(text) <= limit:
        return text
    return f"[... {len(text) - limit} characters cut ...]\n" + text[-limit:]
