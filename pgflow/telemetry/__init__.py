"""Telemetry: lifecycle events, per-step history statistics, worker liveness, and the seam
through which the worker and the client report to OpenTelemetry (docs/telemetry.md).

Importing this package never imports OpenTelemetry: :mod:`pgflow.telemetry.hooks` loads
:mod:`pgflow.telemetry.otel` only when the ``opentelemetry`` package is installed and not
turned off (``PGFLOW_OTEL=off``).
"""

from __future__ import annotations

from pgflow.telemetry.hooks import NO_TELEMETRY, AttemptScope, TaskTelemetry

__all__ = ["NO_TELEMETRY", "AttemptScope", "TaskTelemetry"]
