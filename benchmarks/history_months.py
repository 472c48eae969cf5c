"""``python -m benchmarks.history_months``: what each month of history partitions costs.

Runs, step states and tasks have one partition per month (docs/scaling.md, "History
partitions"), and a month stays until retention drops it. Lookups by run id read one
partition, but a claim looks for queued, waiting and expired tasks in every partition, and
a statement whose keys come from an array (a batch's updates) cannot prune at executor
start either: such statements lock and open every partition and its indexes, in every
transaction, however empty the old months are.

This drains one-step runs on two databases of one server, alternately: one as a fresh
install leaves it (the current month, the next two and the default partition), the other
with ``--months`` more past months (empty, as retention would leave finished months of a
flow without retention; their partial indexes hold no live row). Each drain is one
connection in a loop, either the SQL-core protocol (``claim_tasks`` of ``--batch`` tasks,
then one ``complete_tasks``) or, with ``--batch 10 --one-by-one``, the SQL API protocol
(one ``complete_task`` per task). Printed per side: the medians of the connection's server
CPU per task (from ``/proc``: the server must run on this machine), tasks/s, and the
relation locks one claim transaction holds (fast-path and in the shared lock table).

Example: ``python -m benchmarks.history_months --months 12 --runs 3000 --pairs 3``.
"""

from __future__ import annotations

import argparse
import statistics
import time
import uuid

import psycopg

from benchmarks.core_loop import CLAIM, COMPLETE, complete_params
from benchmarks.edge_loop import API_COMPLETE
from benchmarks.flows import START_RUNS, deploy
from benchmarks.prepare_ab import backend_cpu
from benchmarks.server import open_server

FLOW = "bench_single"
ADD_MONTHS = (
    "select count(*) filter (where pgflow._add_history_partition("
    "date_trunc('month', now()) - make_interval(months => i)))"
    " from generate_series(1, %s) as i"
)
PARTITIONS = "select count(*) from pg_inherits where inhparent = 'pgflow.step_tasks'::regclass"
LOCKS = (
    "select count(*) filter (where fastpath), count(*) filter (where not fastpath)"
    " from pg_locks where pid = pg_backend_pid() and locktype = 'relation'"
)


def drain(url: str, runs: int, batch: int, one_by_one: bool) -> tuple[float, float]:
    """Start ``runs`` one-step runs and drain them; (server CPU µs per task, tasks/s)."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(START_RUNS, [FLOW, runs])
    with psycopg.connect(url, autocommit=True) as conn:
        pid, worker, done = conn.info.backend_pid, uuid.uuid4(), 0
        conn.execute(CLAIM, ([FLOW], worker, 0)).fetchall()  # plans the claim
        cpu, began = backend_cpu(pid), time.perf_counter()
        while rows := conn.execute(CLAIM, ([FLOW], worker, batch)).fetchall():
            if one_by_one:
                for row in rows:
                    conn.execute(API_COMPLETE, (row[0], row[2], row[3], "null", row[4]))
            else:
                conn.execute(COMPLETE, complete_params(rows))
            done += len(rows)
        return (backend_cpu(pid) - cpu) / done * 1e6, done / (time.perf_counter() - began)


def claim_locks(url: str) -> tuple[int, int]:
    """Relation locks one (empty) claim transaction holds: (fast-path, shared table)."""
    with psycopg.connect(url) as conn:
        conn.execute(CLAIM, ([FLOW], uuid.uuid4(), 1)).fetchall()  # plans it
        conn.commit()
        conn.execute(CLAIM, ([FLOW], uuid.uuid4(), 1)).fetchall()
        row = conn.execute(LOCKS).fetchone()
        conn.rollback()
        return (row[0], row[1]) if row else (0, 0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", help="a server to use (default: embedded)")
    parser.add_argument("--months", type=int, default=12, help="past months to add")
    parser.add_argument("--runs", type=int, default=3000, help="runs per drain")
    parser.add_argument("--batch", type=int, default=32, help="tasks per claim")
    parser.add_argument("--one-by-one", action="store_true", help="complete_task per task")
    parser.add_argument("--pairs", type=int, default=3, help="rounds of both sides")
    args = parser.parse_args()
    with open_server(args.database_url) as server:
        aged = server.create_database(f"pgflow_bench_aged_{uuid.uuid4().hex[:6]}")
        urls = {"fresh": server.url, "aged": aged}
        for side, url in urls.items():
            deploy(url)
            if side == "aged":
                with psycopg.connect(url, autocommit=True) as conn:
                    conn.execute(ADD_MONTHS, [args.months])
            drain(url, args.runs // 4, args.batch, args.one_by_one)  # warms the server up
        results: dict[str, list[tuple[float, float]]] = {side: [] for side in urls}
        for i in range(args.pairs):
            for side in list(urls) if i % 2 == 0 else list(urls)[::-1]:
                results[side].append(drain(urls[side], args.runs, args.batch, args.one_by_one))
        for side, url in urls.items():
            with psycopg.connect(url, autocommit=True) as conn:
                row = conn.execute(PARTITIONS).fetchone()
            fast, shared = claim_locks(url)
            cpu = statistics.median(r[0] for r in results[side])
            rate = statistics.median(r[1] for r in results[side])
            each = ", ".join(f"{r[0]:.0f}" for r in results[side])
            print(
                f"{side}: {row[0] if row else '?'} partitions per table, server CPU {cpu:5.0f}"
                f" µs/task [{each}], {rate:5.0f} tasks/s, a claim holds {fast} fast-path"
                f" and {shared} shared-table relation locks"
            )


if __name__ == "__main__":
    main()
