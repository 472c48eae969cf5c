"""``python -m benchmarks.prune [--runs N] [--batch-size B] [--database-url URL]``.

How long ``pgflow prune`` takes to delete N finished runs, and how long its longest single
transaction is. The history is inserted directly with ``generate_series`` (a flow of three
steps: per run one ``runs`` row, three ``step_states`` and three ``step_tasks``; 85%
completed, 10% failed, 5% cancelled, all finished 40 to 100 days ago, with time-ordered
run ids as ``start_flow`` makes them), plus 1,000 live
runs just as old that must survive. Then :func:`pgflow.retention.prune_runs` deletes
everything older than 30 days in batches of B runs, each its own transaction, timing each
batch. Prints the fill time, the prune's total time and rate, the batch times (median,
p99, longest) and checks that exactly the live runs are left.

Runs on a private embedded Postgres with default durability (``fsync`` and
``synchronous_commit`` on) unless ``--database-url`` names a server.
"""

from __future__ import annotations

import argparse
import statistics
import time
from datetime import timedelta

import psycopg

from benchmarks.server import machine_facts, open_server
from pgflow.db.schema import SchemaManager
from pgflow.retention import PruneResult, prune_runs

LIVE_RUNS = 1000
STEPS = ("fetch", "parse", "store")

_FLOW = """
select pgflow.create_flow('bench_prune');
select pgflow.add_step('bench_prune', 'fetch');
select pgflow.add_step('bench_prune', 'parse', deps_slugs => array['fetch']);
select pgflow.add_step('bench_prune', 'store', deps_slugs => array['parse']);
"""
# Run ids are time-ordered like start_flow's (pgflow._uuid7(): 48 bits of Unix milliseconds,
# then random bits), here of the run's start time, generated once into a temporary table
# that the three inserts join. Runs started 40..100 days ago, oldest first.
_IDS = """
create temporary table bench_ids as
select x.i, x.at, x.status, encode(set_bit(set_bit(overlay(uuid_send(gen_random_uuid())
    placing substring(int8send((extract(epoch from x.at) * 1000)::bigint) from 3)
    from 1 for 6), 52, 1), 53, 1), 'hex')::uuid as run_id
from (
  select i, now() - interval '100 days' + (i * interval '60 days' / %(n)s) as at,
    case when i %% 20 = 0 then 'cancelled' when i %% 10 = 1 then 'failed' else 'completed' end
      as status
  from generate_series(1, %(n)s) as i
) x
"""
_RUNS = """
insert into pgflow.runs (run_id, flow_slug, status, input, output, remaining_steps,
  started_at, completed_at, failed_at, cancelled_at, finished_at, flow_checksum)
select b.run_id, 'bench_prune', b.status, jsonb_build_object('n', b.i),
  case when b.status = 'completed' then jsonb_build_object('store', b.i) end,
  case when b.status = 'completed' then 0 else 1 end,
  b.at, case when b.status = 'completed' then b.at + interval '1 second' end,
  case when b.status = 'failed' then b.at + interval '1 second' end,
  case when b.status = 'cancelled' then b.at + interval '1 second' end,
  b.at + interval '1 second', (select pgflow.flow_checksum('bench_prune'))
from bench_ids b order by b.i
"""
_STATES = """
insert into pgflow.step_states (run_id, step_slug, flow_slug, step_index, status,
  remaining_deps, remaining_tasks, initial_tasks, output, created_at, started_at, completed_at)
select b.run_id, s.slug, 'bench_prune', s.idx - 1, 'completed', 0, 0, 1,
  jsonb_build_object('v', b.i), b.at, b.at, b.at + interval '1 second'
from bench_ids b, unnest(array['fetch', 'parse', 'store']) with ordinality as s(slug, idx)
order by b.i, s.idx
"""
_TASKS = """
insert into pgflow.step_tasks (run_id, step_slug, task_index, flow_slug, status,
  attempts_count, output, queued_at, available_at, priority_at, started_at, completed_at)
select b.run_id, s.slug, 0, 'bench_prune', 'completed', 1, jsonb_build_object('v', b.i),
  b.at, b.at, b.at, b.at, b.at + interval '1 second'
from bench_ids b, unnest(array['fetch', 'parse', 'store']) with ordinality as s(slug, idx)
order by b.i, s.idx
"""
_LIVE = """
select pgflow.start_flow('bench_prune', '{}') from generate_series(1, %(n)s);
update pgflow.runs set started_at = now() - interval '100 days' where status = 'started';
"""


def fill(url: str, runs: int) -> float:
    """Insert the history; return the seconds it took (ANALYZE included)."""
    started = time.perf_counter()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(_FLOW)
        for statement in (_IDS, _RUNS, _STATES, _TASKS):
            conn.execute(statement, {"n": runs})
        for statement in _LIVE.strip().splitlines():
            conn.execute(statement, {"n": LIVE_RUNS})
        conn.execute("analyze pgflow.runs")
        conn.execute("analyze pgflow.step_states")
        conn.execute("analyze pgflow.step_tasks")
    return time.perf_counter() - started


def prune(url: str, batch_size: int) -> tuple[PruneResult, list[float], float]:
    """Prune everything older than 30 days; return the result, each batch's seconds, total."""
    times: list[float] = []
    mark = [time.perf_counter()]

    def timed(_: PruneResult) -> None:
        now = time.perf_counter()
        times.append(now - mark[0])
        mark[0] = now

    started = mark[0]
    with psycopg.connect(url, autocommit=True) as conn:
        result = prune_runs(conn, timedelta(days=30), batch_size=batch_size, on_batch=timed)
    return result, times, time.perf_counter() - started


def left(url: str) -> dict[str, int]:
    """Rows left per table, and how many of the runs are live."""
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "select (select count(*) from pgflow.runs), "
            "(select count(*) from pgflow.runs where status = 'started'), "
            "(select count(*) from pgflow.step_states), (select count(*) from pgflow.step_tasks)"
        ).fetchone()
    assert row is not None
    return dict(zip(("runs", "live", "step_states", "step_tasks"), map(int, row), strict=True))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1_000_000, help="finished runs to prune")
    parser.add_argument("--batch-size", type=int, default=1000, help="runs per transaction")
    parser.add_argument("--database-url", default=None, help="default: a private embedded server")
    args = parser.parse_args()
    with open_server(args.database_url) as server:
        with psycopg.connect(server.url, autocommit=True) as conn:
            SchemaManager(conn).install()
        facts = machine_facts(server)
        settings = facts["settings"]
        print(f"machine: {facts['cores']} cores, {facts['memory_gib']} GiB, Postgres "
              f"{settings['server_version']}, fsync={settings['fsync']}, "
              f"synchronous_commit={settings['synchronous_commit']}, "
              f"shared_buffers={settings['shared_buffers']}")  # fmt: skip
        print(f"filling {args.runs:,} finished runs (+{LIVE_RUNS:,} live) ...", flush=True)
        print(f"fill: {fill(server.url, args.runs):.1f} s")
        result, times, total = prune(server.url, args.batch_size)
        rest = left(server.url)
    p99 = statistics.quantiles(times, n=100)[98] if len(times) >= 100 else max(times)
    rate = result.total / total
    print(f"pruned {result.total:,} runs in {result.batches:,} transactions of up to "
          f"{args.batch_size:,} runs: {total:.1f} s ({rate:,.0f} runs/s)")  # fmt: skip
    print(f"transaction time: median {statistics.median(times) * 1000:.0f} ms, "
          f"p99 {p99 * 1000:.0f} ms, longest {max(times) * 1000:.0f} ms")  # fmt: skip
    print(f"left: {rest}")
    assert result.total == args.runs, result.counts
    assert rest == {"runs": LIVE_RUNS, "live": LIVE_RUNS, "step_states": 3 * LIVE_RUNS,
                    "step_tasks": LIVE_RUNS}, rest  # fmt: skip


if __name__ == "__main__":
    main()
