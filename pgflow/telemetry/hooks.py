"""The seam between pgflow and OpenTelemetry: what the worker and the client call.

The worker wraps each task attempt in ``telemetry.attempt(task)`` and reports its result
to the returned :class:`AttemptScope`; :meth:`pgflow.Client.start` wraps the start in
:func:`start_scope`, whose ``trace_context`` is stored with the run. The classes here do
nothing. :func:`task_telemetry` and :func:`start_scope` return the OpenTelemetry versions
(:mod:`pgflow.telemetry.otel`) when the ``opentelemetry`` package is installed, unless
``PGFLOW_OTEL`` is ``off`` (or ``0``, ``false``, ``no``): only then is OpenTelemetry
imported, so without it nothing is imported or paid.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import uuid
from functools import cache
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

if TYPE_CHECKING:
    from pgflow.worker.store import ClaimedTask, TaskError

__all__ = [
    "NO_TELEMETRY",
    "AttemptScope",
    "StartScope",
    "TaskTelemetry",
    "otel_enabled",
    "start_scope",
    "task_telemetry",
]

logger = logging.getLogger("pgflow.telemetry")

_OFF = frozenset({"0", "off", "false", "no"})


class AttemptScope:
    """One task attempt, from just before its handler runs until its result is known.

    A context manager: entered before the handler runs (so spans the handler opens are
    children of the attempt's), exited after :meth:`finished`. This one does nothing.
    """

    __slots__ = ()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        return None

    def finished(self, error: TaskError | None, elapsed: float, *, discarded: bool) -> None:
        """The attempt's result: ``error`` None when it completed.

        Args:
            error: why it failed (type, message, traceback), or None.
            elapsed: seconds the handler took.
            discarded: its run was cancelled while it ran, so the result was dropped.
        """


class TaskTelemetry:
    """What the worker reports about the tasks it runs; this base reports nothing."""

    def for_worker(self, worker_id: uuid.UUID) -> TaskTelemetry:
        """The telemetry of one worker (its id goes on every span)."""
        return self

    def attempt(self, task: ClaimedTask) -> AttemptScope:
        """The scope of one attempt of ``task`` (see :class:`AttemptScope`)."""
        return _NO_ATTEMPT


class StartScope:
    """Around :meth:`pgflow.Client.start`: the trace context to store with the run.

    Attributes:
        trace_context: ``{"traceparent": ..., "tracestate": ...}`` of the span that
            started the run, or None (stored as NULL).
    """

    trace_context: dict[str, str] | None = None

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        return None

    def started(self, run_id: uuid.UUID) -> None:
        """The run exists (its id goes on the span)."""


_NO_ATTEMPT = AttemptScope()
NO_TELEMETRY = TaskTelemetry()
"""Telemetry that reports nothing: ``Worker(..., telemetry=NO_TELEMETRY)`` turns it off."""


@cache
def _installed() -> bool:
    try:
        return importlib.util.find_spec("opentelemetry") is not None
    except (ImportError, ValueError):
        return False


def otel_enabled() -> bool:
    """Whether OpenTelemetry is installed and not turned off with ``PGFLOW_OTEL``."""
    if os.environ.get("PGFLOW_OTEL", "").strip().lower() in _OFF:
        return False
    return _installed()


def _otel() -> Any:
    """The :mod:`pgflow.telemetry.otel` module, or None when it cannot be imported."""
    if not otel_enabled():
        return None
    try:
        from pgflow.telemetry import otel
    except ImportError as exc:  # e.g. opentelemetry-api missing beside another otel package
        _warn_once(f"OpenTelemetry is installed but cannot be used ({exc}); not reporting")
        return None
    return otel


def task_telemetry(chosen: TaskTelemetry | None, worker_id: uuid.UUID) -> TaskTelemetry:
    """The telemetry a worker uses: ``chosen``, else OpenTelemetry when enabled, else none."""
    if chosen is None:
        otel = _otel()
        chosen = NO_TELEMETRY if otel is None else otel.OpenTelemetry()
    return chosen.for_worker(worker_id)


def start_scope(flow_slug: str) -> StartScope:
    """The scope of one :meth:`~pgflow.Client.start` (OpenTelemetry's when enabled)."""
    otel = _otel()
    return StartScope() if otel is None else otel.RunStart(flow_slug)


@cache
def _warn_once(message: str) -> None:
    logger.warning(message, extra={"action": "telemetry_unavailable"})
