"""One process of the cross-process tracing test: the caller, or a worker running one task.

``python -m tests.integration.telemetry.otel_process caller|worker DB_URL OUT``: sets the
global OpenTelemetry SDK up (an in-memory exporter), does its part, then writes the spans it
recorded to OUT as JSON. The caller starts a run of :data:`flow` inside its own span and
prints the run id; a worker runs ``Worker(flow).run(max_tasks=1)`` with the default
telemetry (OpenTelemetry, found installed).
"""

from __future__ import annotations

import json
import sys
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from pgflow import Client, Flow, Worker

flow = Flow("two_hosts")


@flow.step()
def here(input: dict[str, Any]) -> str:
    return "here"


@flow.step(depends_on=[here])
def there(here: str) -> str:
    return here + " and there"


def _span(span: Any) -> dict[str, Any]:
    return {
        "name": span.name,
        "trace_id": span.context.trace_id,
        "span_id": span.context.span_id,
        "parent_id": span.parent.span_id if span.parent else None,
        "attributes": dict(span.attributes or {}),
    }


def main(role: str, db_url: str, out: str) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    if role == "caller":
        with trace.get_tracer("shop").start_as_current_span("checkout"), Client(db_url) as client:
            print(client.start(flow, {}).run_id)
    else:
        Worker(flow, db_url, poll_interval=0.2, shutdown_grace=5).run(max_tasks=1)
    with open(out, "w", encoding="utf-8") as file:
        json.dump([_span(s) for s in exporter.get_finished_spans()], file)


if __name__ == "__main__":
    main(*sys.argv[1:4])
