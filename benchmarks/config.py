"""Sizes and knobs of a benchmark run: the full run (the report) and ``--quick`` (~10x less)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["FULL", "QUICK", "Config"]


@dataclass(frozen=True, slots=True)
class Config:
    """Everything that sizes a run.

    Attributes:
        name: ``full`` or ``quick``.
        independent_runs: one-step runs started up front, then drained.
        chain_runs: runs of the 10-step chain.
        diamond_runs: runs of root → 8 parallel → join.
        fanout_elements: elements of the one fan-out run's map.
        growth_tasks: finished runs/steps/tasks inserted before the growth workload.
        latency_samples: one-step runs timed one at a time on an idle system.
        dispatch_runs: chains whose 9 step-to-step dispatches are timed one at a time.
        workers: the worker counts every throughput workload runs at.
        repetitions: repetitions behind each figure.
        core_batch: ``max_tasks`` of each claim in the SQL-core loop (and the most
            completions reported in one ``complete_tasks`` call).
        worker_concurrency: ``pgflow.Worker(concurrency=...)`` per worker process.
        worker_batch: ``pgflow.Worker(batch_size=...)``.
        pgbench_clients: client counts of the pgbench baseline.
        pgbench_seconds: ``pgbench -T`` per measurement.
        procrastinate_jobs: no-op jobs deferred up front, then drained.
        edge_batch: batch of the Edge-Worker-shaped layers (``sqlapi``, ``pgflow``).
        edge_concurrency: tasks in flight per process in those layers.
        edge_connections: connections per process in those layers.
        contention_clients: ``pgbench -c`` of the contention workload's writer.
        baseline_workers: the worker counts of those layers in a full run.
    """

    name: str
    independent_runs: int
    chain_runs: int
    diamond_runs: int
    fanout_elements: int
    growth_tasks: int
    latency_samples: int
    dispatch_runs: int
    workers: tuple[int, ...] = (1, 4, 8)
    repetitions: int = 2
    core_batch: int = 32
    worker_concurrency: int = 32
    worker_batch: int = 32
    pgbench_clients: tuple[int, ...] = (4, 16)
    pgbench_seconds: int = 10
    procrastinate_jobs: int = 5000
    edge_batch: int = 10
    edge_concurrency: int = 10
    edge_connections: int = 4
    contention_clients: int = 4
    baseline_workers: tuple[int, ...] = (4,)


FULL = Config(
    name="full",
    independent_runs=5000,
    chain_runs=500,
    diamond_runs=500,
    fanout_elements=10_000,
    growth_tasks=1_000_000,
    latency_samples=200,
    dispatch_runs=50,
    repetitions=3,
)

QUICK = Config(
    name="quick",
    independent_runs=500,
    chain_runs=50,
    diamond_runs=50,
    fanout_elements=1000,
    growth_tasks=100_000,
    latency_samples=20,
    dispatch_runs=6,
    pgbench_seconds=2,
    procrastinate_jobs=200,
)
