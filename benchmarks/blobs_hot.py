"""The hot path with small values, before and after values by reference (``blobs --only hot``).

* SQL core: one-step runs drained by ``claim_tasks`` of 32 and one ``complete_tasks``
  (:func:`benchmarks.schema_ab.drain`), on a database whose functions are replaced by the
  files of ``--baseline`` ("old") and on the current one ("new"), alternating old, new,
  new, old so that a drifting machine favours neither; tasks/s and the backend's CPU per
  task.
* Worker: one in-process ``pgflow.Worker`` (concurrency 32) draining one-step runs with an
  async handler returning a small dict, with the runner as it is ("new") and without
  ``TaskValues`` ("old": inputs and outputs passed through untouched, as before), also
  alternated; tasks/s from the tasks' own timestamps (first claim to last completion).
"""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

import psycopg

import pgflow.worker.worker as worker_module
from benchmarks.schema_ab import backend_cpu, drain, prepare
from pgflow import Flow, Worker
from pgflow.deploy import deploy_flows
from pgflow.testing.databases import DatabaseFactory
from pgflow.worker.runner import TaskRunner

__all__ = ["bench_hot"]

SQL_RUNS = 3000
WORKER_RUNS = 3000

tiny = Flow("bench_tiny")


@tiny.step()
async def answer(input: dict[str, Any]) -> dict[str, bool]:
    return {"ok": True}


class _RunnerWithoutValues(TaskRunner):
    """The runner as it was: no fetching or storing of values by reference."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args[:5], **{k: v for k, v in kwargs.items() if k != "values"})


def _median(values: list[float]) -> str:
    return f"median {statistics.median(values):,.0f} of {sorted(round(v) for v in values)}"


def sql_ab(factory: DatabaseFactory, baseline: Path, pairs: int) -> None:
    files = sorted(baseline.glob("*.sql"))
    rate: dict[str, list[float]] = {"old": [], "new": []}
    cpu: dict[str, list[float]] = {"old": [], "new": []}
    for side in ["old", "new", "new", "old"] * pairs:
        url = factory.create()
        try:
            with psycopg.connect(url, autocommit=True) as conn:
                for path in files if side == "old" else []:
                    conn.execute(path.read_bytes())
                prepare(conn, 1, SQL_RUNS)
                before = backend_cpu(conn)
                rate[side].append(drain(conn))
                after = backend_cpu(conn)
                if before is not None and after is not None:
                    cpu[side].append((after - before) / SQL_RUNS * 1e6)
        finally:
            factory.drop(url)
    print(f"hot path, SQL core ({SQL_RUNS:,} one-step runs, claim 32 + complete_tasks):")
    for side in ("old", "new"):
        name = "--baseline files" if side == "old" else "current"
        print(f"  {side} ({name}): {_median(rate[side])} tasks/s")
        print(f"    backend CPU per task: {_median(cpu[side])} us")


async def worker_round(factory: DatabaseFactory, with_values: bool) -> float:
    url = factory.create()
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            deploy_flows(conn, [tiny], dev=True)
            conn.execute(
                "select count(pgflow.start_flow('bench_tiny', '{\"n\": 1}'::jsonb)) "
                "from generate_series(1, %s)",
                [WORKER_RUNS],
            )
        original = worker_module.TaskRunner
        if not with_values:
            worker_module.TaskRunner = _RunnerWithoutValues  # type: ignore[misc]
        try:
            worker = Worker(tiny, url, concurrency=32, poll_interval=0.2)
            await worker.run_async(until_idle=True)
        finally:
            worker_module.TaskRunner = original  # type: ignore[misc]
        with psycopg.connect(url) as conn:
            row = conn.execute(
                "select count(*) / extract(epoch from max(completed_at) - min(started_at)) "
                "from pgflow.step_tasks where status = 'completed'"
            ).fetchone()
        return float(row[0]) if row else 0.0
    finally:
        factory.drop(url)


async def bench_hot(factory: DatabaseFactory, baseline: Path | None, pairs: int) -> None:
    """Both A/B comparisons (the SQL one only with ``baseline``)."""
    if baseline is not None:
        sql_ab(factory, baseline, pairs)
    rate: dict[str, list[float]] = {"old": [], "new": []}
    for side in ["old", "new", "new", "old"] * pairs:
        rate[side].append(await worker_round(factory, with_values=side == "new"))
    print(f"hot path, pgflow.Worker ({WORKER_RUNS:,} one-step runs, concurrency 32):")
    print(f"  old (runner without TaskValues): {_median(rate['old'])} tasks/s")
    print(f"  new (current):                   {_median(rate['new'])} tasks/s")
