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

With ``--functions``, one more pass of each pgflow kind runs with ``track_functions = all``
and prints, per transaction, the time spent in each pgflow function (its own, and with the
functions it calls): where a completion's time goes inside the SQL core. It is a separate
pass, so tracking does not weigh on the CPU figures.

Example: ``python -m benchmarks.transaction_floor --transactions 3000 --rounds 3``.
"""

from __future__ import annotations

import argparse
import statistics
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import NamedTuple

import psycopg
from psycopg import sql
from psycopg.rows import TupleRow

from benchmarks.edge_loop import API_CLAIM, API_COMPLETE
from benchmarks.flows import START_RUNS, deploy
from benchmarks.prepare_ab import backend_cpu
from benchmarks.server import open_server

__all__ = ["KINDS", "FunctionTime", "Kind", "function_times", "measure", "prepare"]

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
FUNCTION_STATS = """
select f.funcname::text, sum(f.calls)::bigint, sum(f.self_time), sum(f.total_time)
from pg_stat_user_functions f where f.schemaname = 'pgflow' group by f.funcname
"""
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


@contextmanager
def _ready(url: str, kind: str, transactions: int, *settings: str) -> Iterator[_Conn]:
    """A connection that has run a few of ``kind`` (it plans its statements) and readied
    ``transactions`` more, with ``settings`` (``set`` statements) in force."""
    setup, run = KINDS[kind]
    with psycopg.connect(url, autocommit=True, prepare_threshold=None) as conn:
        for setting in settings:
            conn.execute(setting)
        setup(conn, 10)
        run(conn, 10)
        setup(conn, transactions)
        yield conn


def measure(url: str, kind: str, transactions: int) -> tuple[float, float, int]:
    """Run ``transactions`` of one kind; (server CPU µs each, wall µs each, how many ran).

    The connection runs a few first (it plans its statements), outside the measurement, as
    is the kind's set-up.
    """
    with _ready(url, kind, transactions) as conn:
        pid = conn.info.backend_pid
        cpu, began = backend_cpu(pid), time.perf_counter()
        done = KINDS[kind].run(conn, transactions)
        wall = time.perf_counter() - began
        return (backend_cpu(pid) - cpu) / done * 1e6, wall / done * 1e6, done


class FunctionTime(NamedTuple):
    """One pgflow function's share of a kind's transaction (means per transaction)."""

    name: str
    calls: float
    self_us: float
    total_us: float


def _function_stats(conn: _Conn) -> dict[str, tuple[int, float, float]]:
    # the backend writes its counters out when it goes idle after this statement, so the
    # next one reads them (PostgreSQL 15+)
    conn.execute("select pg_stat_force_next_flush()")
    rows = conn.execute(FUNCTION_STATS).fetchall()
    return {name: (calls, self_ms, total_ms) for name, calls, self_ms, total_ms in rows}


def function_times(url: str, kind: str, transactions: int) -> list[FunctionTime]:
    """Run ``transactions`` of one kind with ``track_functions = all`` (a superuser's
    setting); the pgflow functions they called, the most time of their own first."""
    with _ready(url, kind, transactions, "set track_functions = 'all'") as conn:
        before = _function_stats(conn)
        done = KINDS[kind].run(conn, transactions)
        after = _function_stats(conn)
    times = []
    for name, (calls, self_ms, total_ms) in after.items():
        was = before.get(name, (0, 0.0, 0.0))
        if calls > was[0]:
            times.append(FunctionTime(name, (calls - was[0]) / done,
                                      (self_ms - was[1]) * 1e3 / done,
                                      (total_ms - was[2]) * 1e3 / done))  # fmt: skip
    return sorted(times, key=lambda t: -t.self_us)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", help="a server to use (default: embedded)")
    parser.add_argument("--transactions", type=int, default=3000, help="per kind and round")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of every kind")
    parser.add_argument(
        "--functions", action="store_true", help="then time each pgflow function per transaction"
    )
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
        if args.functions:
            print("\ncomplete_task, per transaction: calls, µs in the function, µs with callees")
            for t in function_times(server.url, "complete_task", args.transactions):
                print(f"{t.name:>22}: {t.calls:5.2f} {t.self_us:7.1f} {t.total_us:7.1f}")


if __name__ == "__main__":
    main()
