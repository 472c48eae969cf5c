"""``python -m benchmarks.pooling``: the Worker layer direct, without prepared statements, and
through PgBouncer, interleaved.

Drains the independent workload (one-step runs started up front) with ``pgflow.Worker``
processes (the suite's Worker layer: ``concurrency=32, batch_size=32``, empty handlers) in
three set-ups, rotating their order each round so a machine whose speed drifts favours
none:

- ``direct, prepared``: straight to Postgres, psycopg's default ``prepare_threshold=5``;
- ``direct, unprepared``: straight to Postgres, ``prepare_threshold=None``;
- ``pgbouncer``: through PgBouncer in transaction pooling mode (``pgflow.testing.pgbouncer``,
  ``default_pool_size`` = ``--pool-size``), ``prepare_threshold=None``, LISTEN over a
  direct ``listen_url``.

Prints each measurement (tasks/s, server CPU µs per task, PgBouncer CPU µs per task) and the
medians. The server is a private embedded Postgres (as in ``python -m benchmarks``) unless
``--database-url`` names one on this machine.

Example: ``python -m benchmarks.pooling --runs 3000 --workers 4 --rounds 3``.
"""

from __future__ import annotations

import argparse
import statistics
import time
from contextlib import suppress
from typing import Any

import psutil
import psycopg
from psycopg.types.json import Jsonb

from benchmarks.config import FULL
from benchmarks.cpu import server_cpu
from benchmarks.crew import Crew
from benchmarks.flows import deploy
from benchmarks.server import Server, open_server
from benchmarks.workloads import reset_runtime
from pgflow.testing.pgbouncer import PgBouncer, start_pgbouncer

SETUPS = ("direct, prepared", "direct, unprepared", "pgbouncer")


def drain_once(
    server: Server, crew: Crew, bouncer: PgBouncer, setup: str, runs: int, workers: int
) -> dict[str, Any]:
    """Start ``runs`` one-step runs, drain them with ``workers`` Workers; the figures."""
    reset_runtime(server.url)
    with psycopg.connect(server.url, autocommit=True) as conn:
        conn.execute(
            "select count(*) from (select pgflow.start_flow('bench_single', %s)"
            " from generate_series(1, %s)) s",
            [Jsonb({}), runs],
        )
        conn.execute("checkpoint")
    args: dict[str, Any] = {
        "url": server.url,
        "flows": ["bench_single"],
        "batch": FULL.worker_batch,
        "concurrency": FULL.worker_concurrency,
        "expected": runs,
        "prepare_threshold": 5 if setup == "direct, prepared" else None,
    }
    if setup == "pgbouncer":
        args.update(worker_url=bouncer.url_for(server.url), listen_url=server.url)
    cpu_before, bouncer_before = server_cpu(server.postmaster), _cpu(bouncer.pid)
    result = crew.run(workers, "worker_drain", args)
    seconds = max(r["ended"] for r in result.results) - result.started
    cpu_after, bouncer_after = server_cpu(server.postmaster), _cpu(bouncer.pid)
    _check_completed(server.url, runs)
    return {
        "setup": setup,
        "workers": workers,
        "tasks_per_s": runs / seconds,
        "server_cpu_us": _per_task(cpu_before, cpu_after, runs),
        "pgbouncer_cpu_us": _per_task(bouncer_before, bouncer_after, runs),
        "worker_cpu_us": sum(r["cpu_s"] for r in result.results) / runs * 1e6,
    }


def _cpu(pid: int | None) -> float | None:
    if pid is None:
        return None
    with suppress(psutil.Error):
        times = psutil.Process(pid).cpu_times()
        return float(times.user + times.system)
    return None


def _per_task(before: float | None, after: float | None, tasks: int) -> float | None:
    return None if before is None or after is None else (after - before) / tasks * 1e6


def _check_completed(url: str, runs: int) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute("select count(*) from pgflow.runs where status = 'completed'").fetchone()
    if row is None or row[0] != runs:
        raise RuntimeError(f"only {row and row[0]} of {runs} runs completed")


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", help="a server on this machine (default: embedded)")
    parser.add_argument("--runs", type=int, default=3000, help="one-step runs per drain")
    parser.add_argument("--workers", type=int, nargs="+", default=[4], help="Worker processes")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of the three set-ups")
    parser.add_argument("--pool-size", type=int, default=20, help="PgBouncer default_pool_size")
    args = parser.parse_args()
    records: list[dict[str, Any]] = []
    with (
        open_server(args.database_url) as server,
        start_pgbouncer(server.admin_url, pool_size=args.pool_size) as bouncer,
        Crew(max(args.workers)) as crew,
    ):
        deploy(server.url)
        for setup in SETUPS:  # untimed warm-up of each set-up
            drain_once(server, crew, bouncer, setup, args.runs // 4, max(args.workers))
        for workers in args.workers:
            for round_ in range(args.rounds):
                order = SETUPS[round_ % 3 :] + SETUPS[: round_ % 3]
                for setup in order:
                    record = drain_once(server, crew, bouncer, setup, args.runs, workers)
                    records.append(record)
                    print(
                        f"{time.strftime('%H:%M:%S')} workers={workers} {setup:<20}"
                        f" {record['tasks_per_s']:>7,.0f} tasks/s"
                        f"  server {_fmt(record['server_cpu_us'])} µs/task"
                        f"  pgbouncer {_fmt(record['pgbouncer_cpu_us'])} µs/task"
                        f"  workers {_fmt(record['worker_cpu_us'])} µs/task",
                        flush=True,
                    )
    print("\nmedians")
    for workers in args.workers:
        for setup in SETUPS:
            rows = [r for r in records if r["setup"] == setup and r["workers"] == workers]
            medians = {
                key: statistics.median(r[key] for r in rows) if rows[0][key] is not None else None
                for key in ("tasks_per_s", "server_cpu_us", "pgbouncer_cpu_us", "worker_cpu_us")
            }
            print(
                f"workers={workers} {setup:<20} {_fmt(medians['tasks_per_s']):>7} tasks/s"
                f"  server {_fmt(medians['server_cpu_us'])} µs/task"
                f"  pgbouncer {_fmt(medians['pgbouncer_cpu_us'])} µs/task"
                f"  workers {_fmt(medians['worker_cpu_us'])} µs/task"
                f"  (n={len(rows)})"
            )


if __name__ == "__main__":
    main()
