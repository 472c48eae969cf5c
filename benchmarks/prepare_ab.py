"""``python -m benchmarks.prepare_ab``: the SQL core with and without prepared statements.

pgflow's connections run with psycopg's ``prepare_threshold=None`` (no server-side prepared
statements), so that they work through PgBouncer in transaction pooling mode. This drains
one-step runs with the SQL-core loop (``claim_tasks`` of ``--batch`` tasks, then one
``complete_tasks`` call) on one connection, alternately with ``prepare_threshold=0`` (every
statement prepared) and ``None`` (none), and reports the CPU time of that connection's
server process per task (read from ``/proc``, so time spent waiting for a CPU on a busy
machine does not count) and tasks/s. The server is the test server
(:func:`pgflow.testing.databases.start_server`), which must run on this machine.

Example: ``python -m benchmarks.prepare_ab --batch 1 32 --runs 600 --pairs 4``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
import uuid
from pathlib import Path

import psycopg
from psycopg.types.json import Jsonb

from pgflow.testing.databases import DatabaseFactory, start_server

CLAIM = "select * from pgflow.claim_tasks(array['ab'], %s, %s)"
COMPLETE = (
    "select count(*) from pgflow.complete_tasks(%s::uuid[], %s::text[], %s::int[], "
    "%s::jsonb[], %s::int[])"
)


def backend_cpu(pid: int) -> float:
    """CPU seconds a local server process has used (user + system)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def drain(url: str, threshold: int | None, runs: int, batch: int) -> tuple[float, float]:
    """Start ``runs`` runs and drain them; (server CPU µs per task, tasks/s)."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("truncate pgflow.runs, pgflow.step_states, pgflow.step_tasks")
        conn.execute(
            "select count(pgflow.start_flow('ab', '{}')) from generate_series(1, %s)", [runs]
        )
    with psycopg.connect(url, autocommit=True, prepare_threshold=threshold) as conn:
        conn.execute("set synchronous_commit = off")
        pid, worker, done = conn.info.backend_pid, uuid.uuid4(), 0
        cpu, began = backend_cpu(pid), time.perf_counter()
        while rows := conn.execute(CLAIM, (worker, batch)).fetchall():
            columns = zip(*[(r[0], r[2], r[3], Jsonb(1), r[4]) for r in rows], strict=True)
            conn.execute(COMPLETE, [list(c) for c in columns])
            done += len(rows)
        return (backend_cpu(pid) - cpu) / done * 1e6, done / (time.perf_counter() - began)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 32])
    parser.add_argument("--runs", type=int, default=600, help="runs per drain")
    parser.add_argument("--pairs", type=int, default=4, help="prepared/unprepared rounds")
    args = parser.parse_args()
    with start_server() as server:
        factory = DatabaseFactory(server)
        url = factory.create()
        try:
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute("select pgflow.create_flow('ab')")
                conn.execute("select pgflow.add_step('ab', 's0', array[]::text[])")
            for batch in args.batch:
                _measure(url, batch, args.runs, args.pairs)
        finally:
            factory.drop(url)
            factory.close()


def _measure(url: str, batch: int, runs: int, pairs: int) -> None:
    results: dict[int | None, list[tuple[float, float]]] = {0: [], None: []}
    drain(url, 0, runs // 2, batch)  # warm-up
    drain(url, None, runs // 2, batch)
    for i in range(pairs):
        for threshold in (0, None) if i % 2 == 0 else (None, 0):
            results[threshold].append(drain(url, threshold, runs, batch))
    for threshold, rows in results.items():
        label = "prepared  " if threshold == 0 else "unprepared"
        cpu = statistics.median(r[0] for r in rows)
        rate = statistics.median(r[1] for r in rows)
        each = ", ".join(f"{r[0]:.0f}" for r in rows)
        print(
            f"batch={batch:<3} {label} server CPU {cpu:6.0f} µs/task [{each}]  {rate:6.0f} tasks/s"
        )


if __name__ == "__main__":
    main()
