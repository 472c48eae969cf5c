"""Issues 6 and 17's targets, each checked against figures measured in the same run."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from benchmarks.config import Config
from benchmarks.records import Records

__all__ = ["Check", "checks", "section"]

X = "\N{MULTIPLICATION SIGN}"
_LAYERS = {"core": "SQL core", "worker": "pgflow.Worker"}


@dataclass(frozen=True, slots=True)
class Check:
    """One target: ``measured`` compared with ``bound`` (``>=`` or ``<=``)."""

    target: str
    layer: str
    measured: float
    bound: float
    op: str
    unit: str

    @property
    def verdict(self) -> str:
        """``pass``, ``miss by N%`` or ``not measured``."""
        if math.isnan(self.measured):
            return "not measured"
        if self.op == ">=":
            return (
                "pass"
                if self.measured >= self.bound
                else f"miss by {1 - self.measured / self.bound:.0%}"
            )
        return (
            "pass"
            if self.measured <= self.bound
            else f"miss by {self.measured / self.bound - 1:.0%}"
        )

    @property
    def shown(self) -> str:
        """The measured value with its unit."""
        return "—" if math.isnan(self.measured) else f"{self.measured:.2f}{self.unit}"


def _mean(values: Sequence[float]) -> float:
    return statistics.fmean(values) if values else math.nan


def checks(records: Records, n: int) -> list[Check]:
    """Every target that can be checked from these records (ratios at ``n`` workers)."""
    pgbench = _mean(records.pgbench_tps(n))
    procrastinate = _mean(records.procrastinate(n))
    result: list[Check] = []
    layers = [layer for layer in _LAYERS if records.drains("independent", layer, n)]
    for layer in layers:
        ind = _mean(records.drain_rates("independent", layer, n))
        result += [
            Check(f"independent tasks/s ≥ 0.75 {X} pgbench TPS ({n} workers / clients)",
                  layer, ind / pgbench, 0.75, ">=", X),
            Check(f"independent tasks/s ≥ 5 {X} Procrastinate jobs/s ({n} workers)",
                  layer, ind / procrastinate, 5, ">=", X),
            Check(f"chain tasks/s ≥ 0.8 {X} independent", layer,
                  _mean(records.drain_rates("chain", layer, n)) / ind, 0.8, ">=", X),
            Check(f"diamond tasks/s ≥ 0.8 {X} independent", layer,
                  _mean(records.drain_rates("diamond", layer, n)) / ind, 0.8, ">=", X),
            Check("fan-out run wall time ≤ 3 s", layer,
                  _mean(records.drain_seconds("fanout", layer, n)), 3.0, "<=", " s"),
            Check("idle one-step run latency, mean ≤ 5 ms", layer,
                  _mean([r["total_ms"]["mean"] for r in records.latency(layer, "bench_single")]),
                  5.0, "<=", " ms"),
            Check("growth ratio ≥ 0.9", layer,
                  _mean(records.drain_rates("growth", layer, n))
                  / _mean(records.drain_rates("growth_empty", layer, n)), 0.9, ">=", X),
        ]  # fmt: skip
    result += _issue17(records, n)
    dispatch = [r["dispatch_ms"]["mean"] for r in records.of_kind("dispatch")]
    result.append(
        Check("idle chain dispatch, mean ≤ 2 ms", "core", _mean(dispatch), 2.0, "<=", " ms")
    )
    if "worker" in layers:
        for workload in ("independent", "chain", "diamond", "fanout"):
            core = _mean(records.drain_rates(workload, "core", n))
            worker = _mean(records.drain_rates(workload, "worker", n))
            result.append(Check(f"Worker ≥ 0.6 {X} SQL-core loop ({workload})", "worker",
                                worker / core, 0.6, ">=", X))  # fmt: skip
    else:
        result.append(Check(f"Worker ≥ 0.6 {X} SQL-core loop", "worker", math.nan, 0.6, ">=", X))
    return result


def _issue17(records: Records, n: int) -> list[Check]:
    """Issue 17: Worker chains and diamonds ≥ 0.85 x independent (drain, and start + drain:
    see benchmarks.workloads), and 8 workers ≥ 4 workers on every workload."""
    result: list[Check] = []
    if not records.drains("independent", "worker", n):
        return result
    for label, rates in (("", records.drain_rates), (", start + drain", records.start_drain_rates)):
        ind = _mean(rates("independent", "worker", n))
        for workload in ("chain", "diamond"):
            ratio = _mean(rates(workload, "worker", n)) / ind
            target = f"{workload} tasks/s ≥ 0.85 {X} independent{label}"
            result.append(Check(target, "worker", ratio, 0.85, ">=", X))
    for workload in ("independent", "chain", "diamond", "fanout"):
        for layer in _LAYERS:
            if records.drains(workload, layer, 8) and records.drains(workload, layer, 4):
                result.append(Check(f"{workload}: 8 workers ≥ 4 workers", layer,
                                    _mean(records.drain_rates(workload, layer, 8))
                                    / _mean(records.drain_rates(workload, layer, 4)),
                                    1.0, ">=", X))  # fmt: skip
    return result


def section(config: Config, records: Records, n: int) -> str:
    """The targets table, Markdown."""
    rows = [
        f"| {c.target} | {_LAYERS[c.layer]} | {c.shown} | {c.verdict} |" for c in checks(records, n)
    ]
    note = (
        f"Ratios at {n} workers. Fan-out: {config.fanout_elements:,} elements; growth: "
        f"{config.growth_tasks:,} finished tasks in the tables."
    )
    if config.name == "quick":
        note += " **Quick sizes: indicative only** (the targets are set for the full sizes)."
    head = "| target (issues 6, 17) | layer | measured | verdict |\n|---|---|---|---|\n"
    return "## Targets\n\n" + head + "\n".join(rows) + "\n\n" + note
