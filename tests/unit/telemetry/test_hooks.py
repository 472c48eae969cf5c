"""The telemetry seam: nothing of OpenTelemetry is imported or paid unless it is installed
and enabled; the client's start scope carries the caller's trace context."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import pytest
from opentelemetry.sdk.trace import TracerProvider

from pgflow.telemetry.hooks import NO_TELEMETRY, StartScope, start_scope, task_telemetry
from pgflow.telemetry.otel import OpenTelemetry, RunStart

ROOT = Path(__file__).resolve().parents[3]

_HIDE = """
import importlib.abc, sys
class Hide(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "opentelemetry" or name.startswith("opentelemetry."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None
sys.meta_path.insert(0, Hide())
"""

_PROBE = """
import sys, uuid
import pgflow
from pgflow import Client, Flow, Worker
from pgflow.telemetry.hooks import NO_TELEMETRY, StartScope, start_scope, task_telemetry
flow = Flow("probe").step("work", lambda input: 1)
worker = Worker(flow, "postgresql://nobody@127.0.0.1:1/none")
client = Client("postgresql://nobody@127.0.0.1:1/none")
print("imported after Worker():", any(m.split(".")[0] == "opentelemetry" for m in sys.modules))
chosen = task_telemetry(worker.telemetry, worker.worker_id)
scope = start_scope("probe")
print("telemetry:", type(chosen).__name__, type(scope).__name__)
print("imported at the end:", any(m.split(".")[0] == "opentelemetry" for m in sys.modules))
"""


def probe(*, hide: bool, env: dict[str, str] | None = None) -> list[str]:
    code = textwrap.dedent((_HIDE if hide else "") + _PROBE)
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60,
        env={**os.environ, "PGFLOW_OTEL": "", **(env or {})}, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


def test_without_opentelemetry_nothing_is_imported() -> None:
    assert probe(hide=True) == [
        "imported after Worker(): False",
        "telemetry: TaskTelemetry StartScope",
        "imported at the end: False",
    ]


@pytest.mark.parametrize("value", ["off", "0", "false", "NO"])
def test_pgflow_otel_off_turns_it_off_even_when_installed(value: str) -> None:
    assert probe(hide=False, env={"PGFLOW_OTEL": value}) == [
        "imported after Worker(): False",
        "telemetry: TaskTelemetry StartScope",
        "imported at the end: False",
    ]


def test_installed_it_is_used_but_imported_only_when_a_worker_runs() -> None:
    assert probe(hide=False) == [
        "imported after Worker(): False",
        "telemetry: OpenTelemetry RunStart",
        "imported at the end: True",
    ]


def test_the_no_op_scopes_do_nothing() -> None:
    assert task_telemetry(NO_TELEMETRY, uuid.uuid4()) is NO_TELEMETRY
    scope = StartScope()
    with scope:
        scope.started(uuid.uuid4())
    assert scope.trace_context is None


def test_a_chosen_telemetry_is_bound_to_the_worker() -> None:
    chosen = OpenTelemetry(tracer_provider=TracerProvider())
    worker_id = uuid.uuid4()
    bound = task_telemetry(chosen, worker_id)
    assert isinstance(bound, OpenTelemetry) and bound is not chosen
    assert bound.worker_id == str(worker_id) and chosen.worker_id == ""


def test_the_start_scope_carries_the_callers_span() -> None:
    caller = TracerProvider().get_tracer("caller")  # not the global provider
    with caller.start_as_current_span("checkout") as span, start_scope("shop") as scope:
        assert isinstance(scope, RunStart)
    context = span.get_span_context()
    assert scope.trace_context is not None
    assert scope.trace_context["traceparent"].startswith(
        f"00-{context.trace_id:032x}-{context.span_id:016x}-"
    )


def test_without_a_span_or_an_sdk_nothing_is_stored() -> None:
    with start_scope("shop") as scope:
        pass
    assert scope.trace_context is None
