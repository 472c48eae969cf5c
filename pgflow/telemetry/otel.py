"""The OpenTelemetry side of :mod:`pgflow.telemetry.hooks` (the ``otel`` extra).

Imported only when OpenTelemetry is installed and enabled. Traces: :class:`RunStart` opens
a ``start <flow>`` span (a child of the caller's current span) around
:meth:`pgflow.Client.start` and stores its W3C trace context with the run; every task
attempt is a ``task <flow>/<step>`` span whose parent is that context, on whichever host
runs it (a run started without a trace gets one: its trace id is the run id). Metrics
(instrument names in docs/telemetry.md): tasks completed and failed, task duration, claim
lag. Providers default to the global ones; while no SDK is set up globally (and none was
passed), no task span is even built. A failure inside OpenTelemetry (a broken span
processor, say) never reaches the worker: it is logged once and the task goes on.
"""

from __future__ import annotations

import copy
import logging
import uuid
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

from opentelemetry import context as otel_context
from opentelemetry import metrics, trace
from opentelemetry.trace import (
    NonRecordingSpan,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
)
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from pgflow._version import __version__
from pgflow.telemetry.hooks import AttemptScope, StartScope, TaskTelemetry

if TYPE_CHECKING:
    from pgflow.worker.store import ClaimedTask, TaskError

__all__ = ["OpenTelemetry", "RunStart"]

logger = logging.getLogger("pgflow.telemetry")

_SCOPE = "pgflow"
_W3C = TraceContextTextMapPropagator()
_SAMPLED = TraceFlags(TraceFlags.SAMPLED)
_NO_OP_PROVIDERS = (trace.ProxyTracerProvider, trace.NoOpTracerProvider)


class _Guard:
    """Swallows OpenTelemetry's own failures, logging the first one."""

    def __init__(self) -> None:
        self.failures = 0

    def failed(self, exc: Exception) -> None:
        self.failures += 1
        if self.failures == 1:
            logger.warning(
                "OpenTelemetry failed (%s: %s); tasks go on, telemetry may be incomplete, "
                "and further failures are not logged",
                type(exc).__name__,
                exc,
                exc_info=exc,
                extra={"action": "telemetry_failed"},
            )


class OpenTelemetry(TaskTelemetry):
    """Task spans and metrics through OpenTelemetry.

    Args:
        tracer_provider: where spans go (default: the global provider).
        meter_provider: where metrics go (default: the global provider).
    """

    def __init__(self, *, tracer_provider: Any = None, meter_provider: Any = None) -> None:
        self.tracer = trace.get_tracer(_SCOPE, __version__, tracer_provider=tracer_provider)
        meter = metrics.get_meter(_SCOPE, __version__, meter_provider=meter_provider)
        self.completed = meter.create_counter(
            "pgflow.tasks.completed", unit="{task}", description="Task attempts that completed"
        )
        self.failed = meter.create_counter(
            "pgflow.tasks.failed", unit="{task}", description="Task attempts that failed"
        )
        self.duration = meter.create_histogram(
            "pgflow.task.duration", unit="s", description="Handler time of a task attempt"
        )
        self.claim_lag = meter.create_histogram(
            "pgflow.task.claim_lag",
            unit="s",
            description="From a task becoming claimable to its claim by a worker",
        )
        self.worker_id = ""
        self.guard = _Guard()
        self._own_provider = tracer_provider is not None
        self._labels: dict[tuple[str, str], dict[str, str]] = {}

    def for_worker(self, worker_id: uuid.UUID) -> OpenTelemetry:
        """A copy putting ``worker_id`` on every span (instruments are shared)."""
        bound = copy.copy(self)
        bound.worker_id = str(worker_id)
        return bound

    def attempt(self, task: ClaimedTask) -> AttemptScope:
        """A span for the attempt, current while the handler runs."""
        return _Attempt(self, task)

    def tracing(self) -> bool:
        """Whether spans go anywhere: a provider was given, or the SDK is set up globally.

        Checked per attempt (a cheap call), so an SDK set up after the worker started counts.
        """
        if self._own_provider:
            return True
        return not isinstance(trace.get_tracer_provider(), _NO_OP_PROVIDERS)

    def labels(self, task: ClaimedTask) -> dict[str, str]:
        """The metric attributes of a task's step (built once per step)."""
        key = (task.flow_slug, task.step_slug)
        found = self._labels.get(key)
        if found is None:
            found = {"pgflow.flow_slug": key[0], "pgflow.step_slug": key[1]}
            self._labels[key] = found
        return found


class _Attempt(AttemptScope):
    __slots__ = ("_otel", "_span", "_task", "_token")

    def __init__(self, otel: OpenTelemetry, task: ClaimedTask) -> None:
        self._otel = otel
        self._task = task
        self._span: Any = None
        self._token: Any = None

    def __enter__(self) -> Self:
        try:
            self._start()
        except Exception as exc:  # noqa: BLE001 - telemetry never fails a task
            self._otel.guard.failed(exc)
        return self

    def _start(self) -> None:
        task, otel = self._task, self._otel
        otel.claim_lag.record(task.claim_lag, otel.labels(task))
        if not otel.tracing():
            return  # no SDK set up: every span would be OpenTelemetry's no-op anyway
        stored = task.trace_context
        parent = _W3C.extract(stored) if isinstance(stored, dict) else _run_trace(task.run_id)
        self._span = otel.tracer.start_span(
            f"task {task.flow_slug}/{task.step_slug}",
            context=parent,
            kind=SpanKind.CONSUMER,
            attributes={
                "pgflow.run_id": str(task.run_id),
                "pgflow.flow_slug": task.flow_slug,
                "pgflow.step_slug": task.step_slug,
                "pgflow.task_index": task.task_index,
                "pgflow.attempt": task.attempt,
                "pgflow.worker_id": otel.worker_id,
                "pgflow.claim_lag_s": task.claim_lag,
            },
        )
        self._token = otel_context.attach(trace.set_span_in_context(self._span))

    def finished(self, error: TaskError | None, elapsed: float, *, discarded: bool) -> None:
        """Record the outcome on the span and in the metrics."""
        try:
            self._finish(error, elapsed, discarded)
        except Exception as exc:  # noqa: BLE001 - telemetry never fails a task
            self._otel.guard.failed(exc)

    def _finish(self, error: TaskError | None, elapsed: float, discarded: bool) -> None:
        otel, span = self._otel, self._span
        labels = otel.labels(self._task)
        outcome = "discarded" if discarded else "completed" if error is None else "failed"
        otel.duration.record(elapsed, {**labels, "pgflow.outcome": outcome})
        if span is not None:
            span.set_attribute("pgflow.outcome", outcome)
        if discarded:
            return
        if error is None:
            otel.completed.add(1, labels)
            return
        otel.failed.add(1, {**labels, "error.type": error.type})
        if span is not None:
            _record_error(span, error)

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace_: TracebackType | None,
    ) -> None:
        try:
            if self._token is not None:
                otel_context.detach(self._token)
            if self._span is not None:
                if error is not None:  # the worker stopped (or crashed) while it ran
                    self._span.set_attribute("pgflow.outcome", "interrupted")
                self._span.end()
        except Exception as exc:  # noqa: BLE001 - telemetry never fails a task
            self._otel.guard.failed(exc)


def _run_trace(run_id: uuid.UUID) -> Any:
    """The trace of a run that stored none (started without OpenTelemetry): its id is the
    run id (128 bits), under a run span no process records (span id: the id's low bits).

    Sampled, so a parent-based sampler keeps every task span of the run.
    """
    span_id = run_id.int & 0xFFFF_FFFF_FFFF_FFFF or 1
    context = SpanContext(run_id.int, span_id, is_remote=True, trace_flags=_SAMPLED)
    return trace.set_span_in_context(NonRecordingSpan(context))


def _record_error(span: Any, error: TaskError) -> None:
    """The failure as OpenTelemetry's exception event (the exception itself is gone)."""
    attributes = {"exception.type": error.type, "exception.message": error.message}
    if error.traceback:
        attributes["exception.stacktrace"] = error.traceback
    span.add_event("exception", attributes)
    span.set_attribute("error.type", error.type)
    span.set_status(Status(StatusCode.ERROR, f"{error.type}: {error.message}"[:1000]))


class RunStart(StartScope):
    """A ``start <flow>`` span around :meth:`pgflow.Client.start` (global tracer provider).

    Its W3C trace context is what the run stores; when the caller has a current span, the
    start span is its child, so the run continues the caller's trace.
    """

    def __init__(self, flow_slug: str) -> None:
        self._flow_slug = flow_slug
        self._span: Any = None
        self._token: Any = None

    def __enter__(self) -> Self:
        try:
            self._start()
        except Exception as exc:  # noqa: BLE001 - telemetry never fails a start
            _CLIENT_GUARD.failed(exc)
        return self

    def _start(self) -> None:
        tracer = trace.get_tracer(_SCOPE, __version__)
        self._span = tracer.start_span(
            f"start {self._flow_slug}",
            kind=SpanKind.PRODUCER,
            attributes={"pgflow.flow_slug": self._flow_slug},
        )
        self._token = otel_context.attach(trace.set_span_in_context(self._span))
        carrier: dict[str, str] = {}
        _W3C.inject(carrier)
        self.trace_context = carrier or None

    def started(self, run_id: uuid.UUID) -> None:
        """Put the run id on the span."""
        if self._span is not None:
            self._span.set_attribute("pgflow.run_id", str(run_id))

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace_: TracebackType | None,
    ) -> None:
        try:
            if self._token is not None:
                otel_context.detach(self._token)
            if self._span is None:
                return
            if error is not None:
                self._span.record_exception(error)
                self._span.set_status(Status(StatusCode.ERROR, str(error)[:1000]))
            self._span.end()
        except Exception as exc:  # noqa: BLE001 - telemetry never fails a start
            _CLIENT_GUARD.failed(exc)


_CLIENT_GUARD = _Guard()
