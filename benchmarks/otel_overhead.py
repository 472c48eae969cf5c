"""``python -m benchmarks.otel_overhead``: what OpenTelemetry costs a ``pgflow.Worker``.

The suite's independent workload (one-step runs started up front, then drained by
``pgflow.Worker`` processes with empty handlers), in three modes, interleaved repetition
by repetition so the machine's drift spreads over all of them:

- ``off``: ``PGFLOW_OTEL=off``, OpenTelemetry never imported (as when it is not installed);
- ``api``: the ``otel`` extra installed, no SDK set up in the process (OpenTelemetry's
  global no-op providers: what an application that installs the extra but configures
  nothing pays);
- ``sdk``: the SDK's ``TracerProvider`` and ``MeterProvider`` set up globally with no
  exporter and no metric reader (spans and measurements are built, then dropped).

Each mode has its own crew of worker processes (spawned with the mode in their
environment). Prints tasks/s and the worker processes' CPU per task (microseconds, the
steadier figure on a busy machine) with their spread, and the change against ``off``.
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
from contextlib import ExitStack
from typing import Any

from benchmarks import worker_layer
from benchmarks.config import FULL, QUICK
from benchmarks.crew import Crew, Member
from benchmarks.flows import deploy
from benchmarks.server import machine_facts, open_server
from benchmarks.workloads import measure_drain, workloads

__all__ = ["drain", "main"]

MODES = ("off", "api", "sdk")
_MODE_VARIABLE = "PGFLOW_BENCH_OTEL"


def drain(member: Member, args: dict[str, Any]) -> dict[str, Any]:
    """The crew command ``otel_drain``: set this process's mode up, then drain as usual."""
    mode = os.environ.get(_MODE_VARIABLE, "off")
    os.environ["PGFLOW_OTEL"] = "off" if mode == "off" else "on"
    if mode == "sdk" and not _sdk_set_up:
        _set_up_sdk()
    return worker_layer.drain(member, args)


_sdk_set_up = False


def _set_up_sdk() -> None:
    """Global SDK providers with no exporter and no reader (once per process)."""
    global _sdk_set_up
    from opentelemetry import metrics, trace
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.trace import TracerProvider

    trace.set_tracer_provider(TracerProvider())
    metrics.set_meter_provider(MeterProvider())
    _sdk_set_up = True


def _crew(mode: str, size: int) -> Crew:
    """A crew whose processes start with ``mode`` in their environment."""
    saved = os.environ.get(_MODE_VARIABLE)
    os.environ[_MODE_VARIABLE] = mode
    try:
        return Crew(size)
    finally:
        if saved is None:
            os.environ.pop(_MODE_VARIABLE, None)
        else:
            os.environ[_MODE_VARIABLE] = saved


def _spread(values: list[float]) -> str:
    mean = statistics.mean(values)
    return f"{mean:,.0f} ±{(max(values) - min(values)) / 2 / mean:.0%}"


def main(argv: list[str] | None = None) -> int:
    """Measure and print the table."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.otel_overhead", description=__doc__)
    parser.add_argument("--database-url", help="a server to use (default: embedded)")
    parser.add_argument("--quick", action="store_true", help="the suite's --quick sizes")
    parser.add_argument("--repetitions", type=int, default=5)
    parser.add_argument("--workers", type=int, default=1, help="worker processes per drain")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    config = QUICK if args.quick else FULL
    independent = workloads(config)[0]
    records: dict[str, list[dict[str, Any]]] = {mode: [] for mode in MODES}
    with open_server(args.database_url) as server, ExitStack() as stack:
        deploy(server.url)
        crews = {mode: stack.enter_context(_crew(mode, args.workers)) for mode in MODES}
        for mode in MODES:  # warm-up, not counted
            measure_drain(server, crews[mode], config, independent, layer="otel",
                          workers=args.workers)  # fmt: skip
        for _ in range(args.repetitions):
            for mode in MODES:
                records[mode].append(measure_drain(
                    server, crews[mode], config, independent, layer="otel", workers=args.workers
                ))  # fmt: skip
        facts = machine_facts(server)
    _print(records, facts, independent.tasks, args)
    return 0


def _print(records: dict[str, list[dict[str, Any]]], facts: dict[str, Any], tasks: int,
           args: argparse.Namespace) -> None:  # fmt: skip
    print(f"{facts['postgres']}; {facts['cores']} cores, {facts['cpu_model']}; "
          f"load at start {facts['loadavg_at_start']}\n")  # fmt: skip
    print(f"independent workload: {tasks:,} one-step runs, {args.workers} Worker process(es), "
          f"{args.repetitions} interleaved repetitions per mode\n")  # fmt: skip
    print("| mode | tasks/s | worker CPU µs/task | CPU vs off |\n|---|---|---|---|")
    base = statistics.mean(r["cost_per_task"]["client_cpu_us"] for r in records["off"])
    for mode in MODES:
        rates = [r["tasks_per_s"] for r in records[mode]]
        cpu = [r["cost_per_task"]["client_cpu_us"] for r in records[mode]]
        change = statistics.mean(cpu) / base - 1
        print(f"| {mode} | {_spread(rates)} | {_spread(cpu)} | {change:+.1%} |")


if __name__ == "__main__":
    sys.exit(main())
