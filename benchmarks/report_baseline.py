"""The pgflow 0.8.1 side-by-side and the contention sections, and their figures as data.

Used by the full report (``latest.md``) and by focused runs (``--only``: stdout and the
``--json`` file's ``summary``).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Sequence
from typing import Any

from benchmarks.markdown import X, rate, table
from benchmarks.records import Records

WHY_START = (
    "The drain rates leave out starting the runs, and that is not the same work for every "
    "shape: an independent run's task is created by `start_flow`, before the clock starts, "
    "while a chain's drain creates 9 of its 10 tasks itself (each completion starts the next "
    "step). Rates with the start count every task's creation and run, so they compare shapes."
)

__all__ = [
    "LAYERS",
    "THROUGHPUT",
    "WHY_START",
    "baseline_section",
    "contention_section",
    "focused_section",
    "summary",
]

THROUGHPUT = ("independent", "chain", "diamond", "fanout")
LAYERS = ("core", "worker", "sqlapi", "pgflow")
_WAITS = ("Lock:object", "IO:WALSync")


def _mean(values: Iterable[float]) -> float:
    values = list(values)
    return statistics.fmean(values) if values else math.nan


def _ratio(a: float, b: float) -> float:
    return a / b if b and not math.isnan(a) and not math.isnan(b) else math.nan


def _x(value: float) -> str:
    return "—" if math.isnan(value) else f"{value:.2f}{X}"


def summary(records: Records, workers: Sequence[int]) -> dict[str, Any]:
    """Mean tasks/s per workload, worker count and layer; ``x_pgflow`` ratios; contention."""
    result: dict[str, Any] = {}
    for workload in THROUGHPUT:
        for n in workers:
            rates = {
                layer: _mean(records.drain_rates(workload, layer, n))
                for layer in LAYERS
                if records.drains(workload, layer, n)
            }
            if not rates:
                continue
            entry: dict[str, Any] = {
                "tasks_per_s": rates,
                "tasks_per_s_with_start": {
                    layer: _mean(records.start_drain_rates(workload, layer, n)) for layer in rates
                },
            }
            if "pgflow" in rates:
                entry["x_pgflow"] = {
                    layer: _ratio(value, rates["pgflow"])
                    for layer, value in rates.items()
                    if layer != "pgflow"
                }
            result.setdefault(workload, {})[str(n)] = entry
    for n in workers:
        runs = [r for r in records.of_kind("contention") if r["workers"] == n]
        if runs:
            result.setdefault("contention", {})[str(n)] = _contention(runs)
    return result


def _contention(runs: list[dict[str, Any]]) -> dict[str, Any]:
    def of(variant: str) -> list[dict[str, Any]]:
        return [r for r in runs if r["variant"] == variant]

    def waits(variant: str, role: str) -> dict[str, float]:
        seen = [r["waits"].get(role, {}) for r in of(variant)]
        return {event: _mean(w.get(event, {}).get("mean", 0.0) for w in seen) for event in _WAITS}

    with_, without = (_mean(r["tasks_per_s"] for r in of(v)) for v in ("wakeups", "silent"))
    return {
        "with_wakeups_tasks_per_s": with_,
        "without_wakeups_tasks_per_s": without,
        "ratio_with_over_without": _ratio(with_, without),
        "repetitions": len(of("wakeups")),
        "waits_mean_backends": {
            variant: {role: waits(variant, role) for role in ("workers", "writer")}
            for variant in ("wakeups", "silent")
        },
        "writer_tps": {v: _mean(r["writer"]["tps"] for r in of(v)) for v in ("wakeups", "silent")},
        "writer_wal_mib_per_s": {
            v: _mean(r["writer"]["wal_mib_per_s"] for r in of(v)) for v in ("wakeups", "silent")
        },
    }


def baseline_section(records: Records, workers: Sequence[int], skipped: str | None) -> str:
    """``## Side by side with pgflow 0.8.1``: Worker and SQL API against pgflow's SQL core."""
    from benchmarks.pgflow_ts import VERSION

    title = f"## Side by side with pgflow {VERSION} (TypeScript, SQL core; tasks/s)\n\n"
    if skipped:
        return title + skipped
    data = summary(records, workers)
    rows = []
    for workload in THROUGHPUT:
        for n in workers:
            entry = data.get(workload, {}).get(str(n))
            if not entry or "pgflow" not in entry["tasks_per_s"]:
                continue
            rows.append(
                [workload, str(n)]
                + [rate(records.drain_rates(workload, layer, n)) for layer in LAYERS[1:]]
                + [_x(entry["x_pgflow"].get(layer, math.nan)) for layer in ("worker", "sqlapi")]
            )
    if not rows:
        return ""
    heads = ["workload", "workers", "pgflow.Worker", "SQL API, same protocol",
             f"pgflow {VERSION}", "Worker ÷ pgflow", "SQL API ÷ pgflow"]  # fmt: skip
    note = (
        f"pgflow {VERSION}: `@pgflow/core`'s migrations with pgmq's SQL in a database of its own "
        "on the same server, driven as its Edge Worker does (per process 4 connections, "
        "`pgmq.read_with_poll` + `pgflow.start_tasks` for 10 messages, then one "
        "`pgflow.complete_task` per task, 10 in flight), with empty handlers and "
        "`realtime.send` a no-op (`docs/performance.md`). SQL API, same protocol: that loop "
        "on our SQL API (`claim_tasks(max_tasks => 10)`, one `complete_task` per task). "
        "Same worker processes, same sizes, same run."
    )
    return title + table(heads, rows) + "\n\n" + note


def contention_section(records: Records, workers: Sequence[int]) -> str:
    """``## Contention``: the independent drain beside a writer, with and without NOTIFY."""
    data = summary(records, workers).get("contention", {})
    rows = []
    for n in workers:
        c = data.get(str(n))
        if not c:
            continue
        w = c["waits_mean_backends"]
        rows.append([
            str(n),
            f"{c['with_wakeups_tasks_per_s']:,.0f}",
            f"{c['without_wakeups_tasks_per_s']:,.0f}",
            _x(c["ratio_with_over_without"]),
            " / ".join(f"{w[v]['workers']['Lock:object']:.2f}" for v in ("wakeups", "silent")),
            " / ".join(f"{w[v]['workers']['IO:WALSync']:.2f}" for v in ("wakeups", "silent")),
            " / ".join(f"{w[v]['writer']['IO:WALSync']:.2f}" for v in ("wakeups", "silent")),
            " / ".join(f"{c['writer_tps'][v]:,.0f} ({c['writer_wal_mib_per_s'][v]:.0f})"
                       for v in ("wakeups", "silent")),
        ])  # fmt: skip
    if not rows:
        return ""
    heads = ["workers", "with wake-ups", "without", "with ÷ without",
             "Lock:object, workers", "IO:WALSync, workers", "IO:WALSync, writer",
             "writer TPS (WAL MiB/s)"]  # fmt: skip
    note = (
        "The independent workload drained by pgflow.Worker (tasks/s) while `pgbench -c 4` "
        "commits `INSERT`s of 16 rows of 1 KB in another database of the server (writer "
        "TPS, whole-cluster WAL in MiB/s); *without*: the engine's `pg_notify` helpers "
        "emptied in the benchmark database. Wait columns: "
        "mean number of active backends in that wait event per `pg_stat_activity` sample "
        "(every 10 ms), with wake-ups / without. Both variants back to back, order "
        "alternating between repetitions."
    )
    title = "## Contention: wake-ups beside a WAL-heavy writer\n\n"
    return title + table(heads, rows) + "\n\n" + note


def focused_section(records: Records, workers: Sequence[int]) -> str:
    """Every drain of a focused run: tasks/s per workload, layer and worker count."""
    from benchmarks.markdown import LAYER

    rows = [
        [workload, LAYER.get(layer, layer),
         *(rate(records.drain_rates(workload, layer, n)) for n in workers),
         *(rate(records.start_drain_rates(workload, layer, n)) for n in workers)]
        for workload in THROUGHPUT
        for layer in LAYERS
        if any(records.drains(workload, layer, n) for n in workers)
    ]  # fmt: skip
    if not rows:
        return ""
    heads = ["workload", "layer", *(f"drain, {n} workers" for n in workers),
             *(f"start + drain, {n} workers" for n in workers)]  # fmt: skip
    note = (
        "Drain: the tasks over the drain's time. Start + drain: over the time to start the "
        "runs (on as many connections as workers) and drain them. " + WHY_START
    )
    return "## Throughput (tasks/s)\n\n" + table(heads, rows) + "\n\n" + note
