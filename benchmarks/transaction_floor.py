"""``python -m benchmarks.transaction_floor``: what one transaction costs the server, at least.

The same-protocol SQL API commits once per task (``complete_task``), so its server CPU per
task cannot fall below what any write transaction costs on the machine. This measures,
on one connection without prepared statements (as pgflow's Edge Worker and our SQL API
layer send them), the server CPU of one autocommit transaction of each kind:

- ``read``: ``select $1``, a round trip that writes nothing;
- ``three updates``: a PL/pgSQL function that updates three rows by primary key, in three
  small tables of their own (a task, its step and its run are the least a completion must
  change), and commits: the floor of any completion;
- ``complete_task``: the SQL API's per-task transaction on a one-step run, plus a tenth of
  a ``claim_tasks`` of 10 (the protocol's claim, shared by its ten completions).

The server CPU is the connection's own server process (from ``/proc``: the server must run
on this machine), so the WAL writer and other background processes are left out. The kinds
run in turn, ``--rounds`` times; the medians are printed. docs/performance.md ("What the
ratios can reach on two cores") uses them.

Example: ``python -m benchmarks.transaction_floor --transactions 3000 --rounds 3``.
"""

from __future__ import annotations

import argparse
import statistics
import time
import uuid
from collections.abc import Callable
from typing import NamedTuple

import psycopg
from psycopg import sql
from psycopg.rows import TupleRow

from benchmarks.edge_loop import API_CLAIM, API_COMPLETE
from benchmarks.flows import START_RUNS, deploy
from benchmarks.prepare_ab import backend_cpu
from benchmarks.server import open_server

__all__ = ["KINDS", "Kind", "measure", "prepare"]

FLOW = "bench_single"
SETUP = """
create schema if not exists floor;
create table if not exists floor.task (id int primary key, status text not null, n int not null);
create table if not exists floor.step (id int primary key, status text not null, n int not null);
create table if not exists floor.run (id int primary key, status text not null, n int not null);
create or replace function floor.complete(k int) returns void language plpgsql as $$
begin
  update floor.task set status = 'completed', n = n + 1 where id = k;
  update floor.step set status = 'completed', n = n + 1 where id = k;
  update floor.run set status = 'completed', n = n + 1 where id = k;
end;
$$;
"""
ROWS = sql.SQL(
    "insert into {} select g, 'started', 0 from generate_series(1, %s) as g on conflict do nothing"
)
READ = "select %s::int"
THREE_UPDATES = "select floor.complete(%s::int)"

_Conn = psycopg.Connection[TupleRow]


def prepare(url: str, transactions: int) -> None:
    """Deploy the benchmark flows and create the three tables with their rows."""
    deploy(url)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(SETUP)
        for table in ("task", "step", "run"):
            conn.execute(ROWS.format(sql.Identifier("floor", table)), [transactions])


def _read(conn: _Conn, n: int) -> int:
    for i in range(n):
        conn.execute(READ, [i])
    return n


def _three_updates(conn: _Conn, n: int) -> int:
    for i in range(1, n + 1):
        conn.execute(THREE_UPDATES, [i])
    return n


def _start_runs(conn: _Conn, n: int) -> None:
    conn.execute(START_RUNS, [FLOW, n])


def _nothing(conn: _Conn, n: int) -> None:
    """No set-up: the rows these transactions change exist from the start."""


def _complete_task(conn: _Conn, n: int) -> int:
    worker, done = uuid.uuid4(), 0
    while rows := conn.execute(API_CLAIM, [[FLOW], worker, 10]).fetchall():
        for row in rows:
            conn.execute(API_COMPLETE, [row[0], row[1], row[2], "null", row[4]])
        done += len(rows)
    return done


class Kind(NamedTuple):
    """One kind of transaction: ``setup(conn, n)`` readies ``n`` of them, outside the
    measurement; ``run(conn, n)`` runs them and returns how many ran."""

    setup: Callable[[_Conn, int], None]
    run: Callable[[_Conn, int], int]


KINDS: dict[str, Kind] = {
    "read": Kind(_nothing, _read),
    "three updates": Kind(_nothing, _three_updates),
    "complete_task": Kind(_start_runs, _complete_task),  # the runs it completes
}


def measure(url: str, kind: str, transactions: int) -> tuple[float, float, int]:
    """Run ``transactions`` of one kind; (server CPU µs each, wall µs each, how many ran).

    The connection runs a few first (it plans its statements), outside the measurement, as
    is the kind's set-up.
    """
    setup, run = KINDS[kind]
    with psycopg.connect(url, autocommit=True, prepare_threshold=None) as conn:
        setup(conn, 10)
        run(conn, 10)
        setup(conn, transactions)
        pid = conn.info.backend_pid
        cpu, began = backend_cpu(pid), time.perf_counter()
        done = run(conn, transactions)
        wall = time.perf_counter() - began
        return (backend_cpu(pid) - cpu) / done * 1e6, wall / done * 1e6, done


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", help="a server to use (default: embedded)")
    parser.add_argument("--transactions", type=int, default=3000, help="per kind and round")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of every kind")
    args = parser.parse_args()
    with open_server(args.database_url) as server:
        prepare(server.url, args.transactions + 10)
        results: dict[str, list[tuple[float, float, int]]] = {kind: [] for kind in KINDS}
        for _ in range(args.rounds):
            for kind in KINDS:
                results[kind].append(measure(server.url, kind, args.transactions))
        for kind, rounds in results.items():
            cpu = statistics.median(r[0] for r in rounds)
            wall = statistics.median(r[1] for r in rounds)
            each = ", ".join(f"{r[0]:.0f}" for r in rounds)
            print(f"{kind:>14}: server CPU {cpu:5.0f} µs each [{each}], wall {wall:5.0f} µs each")


if __name__ == "__main__":
    main()
