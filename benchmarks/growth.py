"""Growth: put a large finished history in the tables, set-based, without running it.

Each finished task is a completed one-step run of ``bench_single`` (a ``runs`` row, a
``step_states`` row and a ``step_tasks`` row) that started ``ago`` before the benchmark, one
every 10 ms, so it looks like the last days' work. Run ids are UUIDv7 of those start times,
as ``pgflow.start_flow`` makes them, so the history lands in its month's partition (the
default partition when that month has none). Then ``VACUUM ANALYZE``, as autovacuum would
have done.
"""

from __future__ import annotations

import time
from typing import Any

import psycopg

__all__ = ["seed_history"]

# i-th run: start time t, id = UUIDv7 of t with i in its random bits (unique)
_SERIES = """
from generate_series(1, %(n)s) i,
  lateral (select now() - %(ago)s::interval + i * interval '10 ms') x(t),
  lateral (select (left(pgflow._uuid7_floor(x.t)::text, 14) || '7000-8000-'
    || lpad(to_hex(i), 12, '0'))::uuid) y(id)
"""

_RUNS = (
    """
insert into pgflow.runs (run_id, flow_slug, status, input, output, remaining_steps,
  started_at, completed_at, finished_at)
select y.id, 'bench_single', 'completed', '{}', '{"task": null}', 0, t, t, t
"""
    + _SERIES
)

_STEP_STATES = (
    """
insert into pgflow.step_states (run_id, step_slug, flow_slug, step_index, step_type, status,
  remaining_deps, remaining_tasks, initial_tasks, output, created_at, started_at,
  completed_at)
select y.id, 'task', 'bench_single', 0, 'single', 'completed', 0, 0, 1, 'null', t, t, t
"""
    + _SERIES
)

_STEP_TASKS = (
    """
insert into pgflow.step_tasks (run_id, step_slug, task_index, flow_slug, status,
  attempts_count, output, queued_at, available_at, priority_at, started_at, completed_at)
select y.id, 'task', 0, 'bench_single', 'completed', 1, 'null', t, t, t, t, t
"""
    + _SERIES
)


def seed_history(url: str, tasks: int, ago: str = "2 days") -> dict[str, Any]:
    """Insert ``tasks`` finished one-step runs, the first started ``ago`` (an interval) before
    now, and vacuum; returns what it took."""
    began = time.monotonic()
    with psycopg.connect(url, autocommit=True) as conn:
        with conn.transaction():
            for statement in (_RUNS, _STEP_STATES, _STEP_TASKS):
                conn.execute(statement, {"n": tasks, "ago": ago})
        inserted = time.monotonic() - began
        conn.execute("vacuum (analyze) pgflow.runs, pgflow.step_states, pgflow.step_tasks")
        size = conn.execute(
            "select sum(pg_total_relation_size(p.relid)) from unnest(array['pgflow.runs',"
            " 'pgflow.step_states', 'pgflow.step_tasks']::regclass[]) as t(r),"
            " lateral pg_partition_tree(t.r) as p"
        ).fetchone()
    return {
        "kind": "growth_seed",
        "tasks": tasks,
        "insert_seconds": inserted,
        "total_seconds": time.monotonic() - began,
        "tables_bytes": int(size[0]) if size else 0,
    }


# The hot paths' indexes (partial: live rows only) against the whole tables, summed over the
# partitions of each parent index.
_HOT_INDEXES = """
select parent.relname as index, sum(pg_relation_size(part.relid)) as bytes
from unnest(array['pgflow.step_tasks_ready', 'pgflow.step_tasks_ready_by_step',
  'pgflow.step_tasks_waiting', 'pgflow.step_tasks_leased', 'pgflow.step_tasks_pkey',
  'pgflow.step_tasks']::regclass[]) with ordinality as parent_oid(oid, n)
join pg_class parent on parent.oid = parent_oid.oid
cross join lateral pg_partition_tree(parent_oid.oid) as part
group by parent.relname, parent_oid.n order by parent_oid.n
"""


def _print_hot_indexes(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(_HOT_INDEXES).fetchall()
    print(
        "sizes with the history: "
        + ", ".join(f"{name} {int(size) / 2**20:,.1f} MiB" for name, size in rows),
        flush=True,
    )


def main() -> None:
    """``python -m benchmarks.growth``: throughput on empty tables and after a history.

    Two databases on one server: one empty, one holding ``--tasks`` finished tasks
    (:func:`seed_history`). The independent workload is drained on each in turn, ``--pairs``
    times (the order alternates, so a drifting machine favours neither), and the medians
    and their ratio are printed, with the load average.
    """
    import argparse
    import dataclasses
    import os
    import statistics

    from benchmarks.config import FULL
    from benchmarks.crew import Crew
    from benchmarks.flows import deploy
    from benchmarks.server import open_server
    from benchmarks.workloads import Workload, measure_drain

    parser = argparse.ArgumentParser(prog="python -m benchmarks.growth", description=main.__doc__)
    parser.add_argument("--tasks", type=int, default=10_000_000, help="finished tasks to seed")
    parser.add_argument("--runs", type=int, default=5000, help="one-step runs per drain")
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--layers", default="core,worker", help="core, worker or both")
    args = parser.parse_args()
    config = dataclasses.replace(FULL, independent_runs=args.runs)
    load_before = os.getloadavg()
    with open_server(None) as server, Crew(args.workers) as crew:
        deploy(server.url)
        grown = dataclasses.replace(
            server,
            url=server.create_database("pgflow_bench_grown"),
            stat_statements=False,
            walinspect=False,
        )
        deploy(grown.url)
        seed = seed_history(grown.url, args.tasks)
        print(
            f"seeded {args.tasks:,} finished tasks in {seed['total_seconds']:.0f} s "
            f"({seed['tables_bytes'] / 2**30:.2f} GiB of runs, step states and tasks)",
            flush=True,
        )
        _print_hot_indexes(grown.url)
        empty_load = Workload("growth_empty", "bench_single", args.runs, args.runs, "task")
        grown_load = Workload("growth", "bench_single", args.runs, args.runs, "task")
        figures: dict[tuple[str, str], list[float]] = {}
        for pair in range(args.pairs):
            sides = [(server, empty_load), (grown, grown_load)]
            for layer in args.layers.split(","):
                for target, workload in sides if pair % 2 == 0 else sides[::-1]:
                    record = measure_drain(
                        target, crew, config, workload, layer=layer, workers=args.workers,
                        keep_history=workload is grown_load,
                    )  # fmt: skip
                    figures.setdefault((layer, workload.name), []).append(record["tasks_per_s"])
                    print(
                        f"pair {pair} {layer} {workload.name}: {record['tasks_per_s']:,.0f}"
                        " tasks/s",
                        flush=True,
                    )
    for layer in args.layers.split(","):
        empty = statistics.median(figures[(layer, "growth_empty")])
        full = statistics.median(figures[(layer, "growth")])
        print(
            f"{layer}, {args.workers} workers: empty {empty:,.0f} tasks/s, after "
            f"{args.tasks:,} finished tasks {full:,.0f} tasks/s: ratio {full / empty:.2f}"
        )
    after = os.getloadavg()
    print(f"load average: {load_before[0]:.2f} -> {after[0]:.2f}")


if __name__ == "__main__":
    main()
