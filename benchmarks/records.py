"""Read a run's records back: the figures the report and the targets are made of."""

from __future__ import annotations

from typing import Any

__all__ = ["Records"]


class Records:
    """A run's records, with lookups by kind, workload, layer and worker count."""

    def __init__(self, records: list[dict[str, Any]]) -> None:
        self.all = records

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        """Every record of one kind (``drain``, ``latency``, ``pgbench`` …)."""
        return [r for r in self.all if r.get("kind") == kind]

    def drains(self, workload: str, layer: str, workers: int) -> list[dict[str, Any]]:
        """The repetitions of one throughput figure."""
        return [
            r
            for r in self.of_kind("drain")
            if r["workload"] == workload and r["layer"] == layer and r["workers"] == workers
        ]

    def drain_rates(self, workload: str, layer: str, workers: int) -> list[float]:
        """Tasks per second of each repetition."""
        return [r["tasks_per_s"] for r in self.drains(workload, layer, workers)]

    def start_drain_rates(self, workload: str, layer: str, workers: int) -> list[float]:
        """Tasks per second of each repetition, counting the start of its runs too (the
        rate that compares workloads of different shapes: see benchmarks.workloads)."""
        return [
            r["tasks_per_s_with_start"]
            for r in self.drains(workload, layer, workers)
            if "tasks_per_s_with_start" in r
        ]

    def drain_seconds(self, workload: str, layer: str, workers: int) -> list[float]:
        """Wall seconds of each repetition."""
        return [r["seconds"] for r in self.drains(workload, layer, workers)]

    def latency(self, layer: str, flow: str) -> list[dict[str, Any]]:
        """The repetitions of an idle-latency measurement."""
        return [r for r in self.of_kind("latency") if r["layer"] == layer and r["flow"] == flow]

    def pgbench_tps(self, clients: int) -> list[float]:
        """pgbench TPS of each repetition at ``clients`` clients."""
        return [r["tps"] for r in self.of_kind("pgbench") if r["clients"] == clients]

    def procrastinate(self, workers: int) -> list[float]:
        """Procrastinate jobs per second of each repetition at ``workers`` processes."""
        return [r["jobs_per_s"] for r in self.of_kind("procrastinate") if r["workers"] == workers]
