"""OpenTelemetry: a span per task attempt continuing the trace stored with the run, and
metrics; in-process, with the SDK's in-memory exporter and metric reader."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from pgflow import AsyncClient, Context, Flow
from pgflow.telemetry.otel import OpenTelemetry
from tests.integration.runtime import Deploy, WorkerPool

flow = Flow("traced", max_attempts=2, base_delay=0)


@flow.step()
async def first(input: dict[str, Any], ctx: Context) -> int:
    if ctx.attempt == 1 and input.get("flaky"):
        raise ValueError("first attempt fails")
    return 1


@flow.step(depends_on=[first])
def second(first: int) -> int:
    return first + 1


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def reader() -> InMemoryMetricReader:
    return InMemoryMetricReader()


@pytest.fixture
def telemetry(exporter: InMemorySpanExporter, reader: InMemoryMetricReader) -> Iterator[Any]:
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    meter_provider = MeterProvider(metric_readers=[reader])
    yield OpenTelemetry(tracer_provider=tracer_provider, meter_provider=meter_provider)
    tracer_provider.shutdown()
    meter_provider.shutdown()


def task_spans(exporter: InMemorySpanExporter) -> list[ReadableSpan]:
    return [s for s in exporter.get_finished_spans() if s.name.startswith("task ")]


def points(reader: InMemoryMetricReader) -> dict[str, list[Any]]:
    data = reader.get_metrics_data()
    assert data is not None
    return {
        metric.name: list(metric.data.data_points)
        for resource in data.resource_metrics
        for scope in resource.scope_metrics
        for metric in scope.metrics
    }


async def test_task_spans_continue_the_callers_trace(
    deploy: Deploy, workers: WorkerPool, aclient: AsyncClient, telemetry: Any, exporter: Any
) -> None:
    deploy(flow)
    worker = workers.start(flow, telemetry=telemetry)
    caller = TracerProvider().get_tracer("the caller")  # not the global provider
    with caller.start_as_current_span("checkout") as span:
        run = await aclient.start(flow, {"flaky": False})
    caller_context = span.get_span_context()
    await aclient.wait(run.run_id, timeout=10)
    await workers.stop(worker)
    spans = {s.name: s for s in task_spans(exporter)}
    assert set(spans) == {"task traced/first", "task traced/second"}
    for s in spans.values():
        assert s.context is not None and s.parent is not None
        assert s.context.trace_id == caller_context.trace_id  # one trace per run
        assert s.parent.span_id == caller_context.span_id
        assert s.kind == SpanKind.CONSUMER
    attributes = dict(spans["task traced/second"].attributes or {})
    assert attributes["pgflow.run_id"] == str(run.run_id)
    assert attributes["pgflow.flow_slug"] == "traced"
    assert attributes["pgflow.step_slug"] == "second"
    assert attributes["pgflow.task_index"] == 0
    assert attributes["pgflow.attempt"] == 1
    assert attributes["pgflow.worker_id"] == str(worker.worker_id)
    assert attributes["pgflow.outcome"] == "completed"


async def test_a_failed_attempt_records_the_exception_and_metrics_count(
    deploy: Deploy,
    workers: WorkerPool,
    aclient: AsyncClient,
    telemetry: Any,
    exporter: Any,
    reader: Any,
    db_url: str,
) -> None:
    deploy(flow)
    worker = workers.start(flow, telemetry=telemetry)
    run = await aclient.start(flow, {"flaky": True})
    await aclient.wait(run.run_id, timeout=10)
    await workers.stop(worker)
    firsts = sorted(
        (s for s in task_spans(exporter) if s.name == "task traced/first"),
        key=lambda s: (s.attributes or {})["pgflow.attempt"],
    )
    failed, retried = firsts
    assert failed.status.status_code == StatusCode.ERROR
    (event,) = failed.events
    assert event.name == "exception"
    assert (event.attributes or {})["exception.type"] == "ValueError"
    assert (event.attributes or {})["exception.message"] == "first attempt fails"
    assert "Traceback" in str((event.attributes or {})["exception.stacktrace"])
    assert (failed.attributes or {})["pgflow.outcome"] == "failed"
    assert retried.status.status_code != StatusCode.ERROR
    assert failed.context and retried.context
    # no trace stored with the run (no caller span, no SDK set up globally): the run id is
    # the trace id, so both attempts are still in one trace
    assert failed.context.trace_id == retried.context.trace_id == run.run_id.int
    found = points(reader)
    assert sum(p.value for p in found["pgflow.tasks.completed"]) == 2
    (failure,) = found["pgflow.tasks.failed"]
    assert failure.value == 1 and failure.attributes["error.type"] == "ValueError"
    assert failure.attributes["pgflow.step_slug"] == "first"
    assert sum(p.count for p in found["pgflow.task.duration"]) == 3
    lag = found["pgflow.task.claim_lag"]
    assert sum(p.count for p in lag) == 3 and all(p.min >= 0 for p in lag)
    with psycopg.connect(db_url) as conn:
        row = conn.execute(
            "select trace_context from pgflow.runs where run_id = %s", [run.run_id]
        ).fetchone()
    assert row == (None,)  # no caller span and no SDK configured globally: nothing stored


class _Broken(SpanProcessor):
    def on_end(self, span: ReadableSpan) -> None:
        raise RuntimeError("the collector is down")


class _FailingExporter(SpanExporter):
    def export(self, spans: Any) -> SpanExportResult:
        raise ConnectionError("no route to the collector")


async def test_broken_telemetry_never_fails_a_task_and_is_logged_once(
    deploy: Deploy,
    workers: WorkerPool,
    aclient: AsyncClient,
    caplog: pytest.LogCaptureFixture,
) -> None:
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(_Broken())
    tracer_provider.add_span_processor(SimpleSpanProcessor(_FailingExporter()))
    deploy(flow)
    worker = workers.start(flow, telemetry=OpenTelemetry(tracer_provider=tracer_provider))
    caplog.set_level(logging.WARNING, logger="pgflow.telemetry")
    runs = [await aclient.start(flow, {}) for _ in range(3)]
    for run in runs:
        assert (await aclient.wait(run.run_id, timeout=10)).status == "completed"
    await workers.stop(worker)
    ours = [r for r in caplog.records if r.name == "pgflow.telemetry"]
    assert len(ours) == 1, ours
    assert "the collector is down" in ours[0].getMessage()
