"""``python -m benchmarks.stats``: how long ``pgflow stats`` takes over a large history.

Inserts finished tasks directly, set-based with ``generate_series`` (not through workers):
runs of a four-step flow (``fetch`` → ``parse`` → ``each``, a map over two elements →
``save``), five tasks per run, spread evenly over a span of time, with retries, failures and
cancellations mixed in; then ``VACUUM ANALYZE`` as autovacuum would. Then it times the
stats query (``pgflow.telemetry.stats.step_stats``) over the whole history (``--since 24h``:
every task in the window, the worst case), over the last hour, and for one flow; and the
event replay (``pgflow events``, newest 1,000 of the last hour). Then the same with the
tasks spread over 30 days (a 24 h window then holds a thirtieth of them). Each figure is the median
of ``--repeat`` timings after one untimed warm-up. Prints a Markdown table with the
machine facts.

``--database-url URL`` uses that server (a fresh database is created and dropped);
the default is a private embedded Postgres in a temporary directory.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from datetime import timedelta
from functools import partial
from typing import Any, TypeVar

import psycopg

from benchmarks.server import machine_facts, open_server
from pgflow import Flow
from pgflow.db.schema import install
from pgflow.deploy import deploy_flows
from pgflow.telemetry.events import recent_events
from pgflow.telemetry.stats import step_stats

__all__ = ["main", "seed_finished_tasks"]

TASKS_PER_RUN = 5
T = TypeVar("T")


async def _noop(**_: Any) -> None:
    return None


async def _pair(**_: Any) -> list[int]:
    return [0, 1]


async def _each(item: int) -> None:
    return None


def stats_flow() -> Flow:
    """The flow whose history is inserted (deployed so steps have their order)."""
    return (
        Flow("bench_stats")
        .step("fetch", _noop)
        .array("parse", _pair, depends_on=["fetch"])
        .map("each", _each, array="parse")
        .step("save", _noop, depends_on=["each"])
    )


# One row per task: (step, task_index, position in the run). Statuses: 2% of parse tasks
# fail for good (their run's later tasks are cancelled), 5% of tasks needed a retry.
_TASKS = """
insert into pgflow.step_tasks (run_id, step_slug, task_index, flow_slug, status,
  attempts_count, queued_at, available_at, priority_at, started_at, completed_at, failed_at,
  cancelled_at, error_message, error_type, worker_id)
select r.run_id, s.slug, s.idx, 'bench_stats', st.status, x.attempts,
  x.ready, x.ready, x.ready, x.ready + x.wait,
  case when st.status = 'completed' then x.ready + x.wait + x.took end,
  case when st.status = 'failed' or x.attempts > 1 then x.ready + x.wait + x.took end,
  case when st.status = 'cancelled' then x.ready + x.wait + x.took end,
  case when st.status = 'failed' or x.attempts > 1 then 'boom' end,
  case when st.status = 'failed' or x.attempts > 1 then 'ValueError' end,
  '00000000-0000-4000-8000-000000000001'::uuid
from (
  select i, md5('stats' || i)::uuid as run_id, (hashint4(i) & 65535) < 1311 as doomed,
    now() - %(span)s::interval + i * (%(span)s::interval / %(runs)s) as began
  from generate_series(1, %(runs)s) i
) r
cross join (values ('fetch', 0, 0), ('parse', 0, 1), ('each', 0, 2), ('each', 1, 2),
  ('save', 0, 3)) as s(slug, idx, pos)
cross join lateral (
  select case when r.doomed and s.pos = 1 then 'failed'
    when r.doomed and s.pos > 1 then 'cancelled' else 'completed' end as status
) st
cross join lateral (
  select r.began + s.pos * interval '2 seconds' as ready,
    make_interval(secs => random() * random() * 0.5) as wait,
    make_interval(secs => 0.005 + random() * random() * random() * 3) as took,
    case when st.status = 'failed' then 3 when random() < 0.05 then 2 else 1 end as attempts
) x
"""

_RUNS = """
insert into pgflow.runs (run_id, flow_slug, status, input, remaining_steps, started_at,
  completed_at, failed_at, finished_at)
select r.run_id, 'bench_stats', case when r.doomed then 'failed' else 'completed' end, '{}', 0,
  r.began, case when not r.doomed then r.began + interval '7 seconds' end,
  case when r.doomed then r.began + interval '3 seconds' end, r.began + interval '7 seconds'
from (
  select md5('stats' || i)::uuid as run_id, (hashint4(i) & 65535) < 1311 as doomed,
    now() - %(span)s::interval + i * (%(span)s::interval / %(runs)s) as began
  from generate_series(1, %(runs)s) i
) r
"""

_STEPS = """
insert into pgflow.step_states (run_id, step_slug, flow_slug, step_index, step_type, status,
  remaining_deps, remaining_tasks, initial_tasks, created_at, started_at, completed_at,
  failed_at, cancelled_at)
select t.run_id, t.step_slug, 'bench_stats', s.step_index, s.step_type,
  min(t.status), 0, 0, count(*), min(t.queued_at), min(t.started_at), max(t.completed_at),
  max(t.failed_at) filter (where t.status = 'failed'), max(t.cancelled_at)
from pgflow.step_tasks t
join pgflow.steps s on s.flow_slug = t.flow_slug and s.step_slug = t.step_slug
where t.flow_slug = 'bench_stats'
group by t.run_id, t.step_slug, s.step_index, s.step_type
"""


def seed_finished_tasks(url: str, tasks: int, span: timedelta) -> dict[str, Any]:
    """Insert about ``tasks`` finished tasks (whole runs of :func:`stats_flow`) evenly over
    the ``span`` before now, and vacuum."""
    runs = max(1, tasks // TASKS_PER_RUN)
    began = time.monotonic()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("truncate pgflow.runs, pgflow.step_states, pgflow.step_tasks")
        with conn.transaction():
            for statement in (_TASKS, _RUNS, _STEPS):
                conn.execute(statement, {"runs": runs, "span": span})
        inserted = time.monotonic() - began
        conn.execute("vacuum (analyze) pgflow.runs, pgflow.step_states, pgflow.step_tasks")
        row = conn.execute("select count(*) from pgflow.step_tasks").fetchone()
    return {"tasks": int(row[0]) if row else 0, "insert_s": inserted}


def _timed(call: Callable[[], T], repeat: int) -> tuple[float, T]:
    result = call()  # warm-up: caches and plans
    times = []
    for _ in range(repeat):
        began = time.perf_counter()
        result = call()
        times.append(time.perf_counter() - began)
    return statistics.median(times), result


_STATS_CASES = (
    ("stats --since 24h", timedelta(hours=24), None),
    ("stats --since 24h --flow bench_stats", timedelta(hours=24), "bench_stats"),
    ("stats --since 1h", timedelta(hours=1), None),
)


def measure(url: str, repeat: int, history: str) -> list[tuple[str, str, float, str]]:
    """Time each query; ``(history, what, seconds, what it returned)``."""
    rows: list[tuple[str, str, float, str]] = []
    with psycopg.connect(url, autocommit=True) as conn:
        for label, since, flow in _STATS_CASES:
            seconds, found = _timed(partial(step_stats, conn, since=since, flow_slug=flow), repeat)
            tasks = sum(s.tasks for s in found)
            rows.append((history, label, seconds, f"{len(found)} steps, {tasks:,} tasks"))
        seconds, events = _timed(
            lambda: recent_events(conn, since=timedelta(hours=1), limit=1000), repeat
        )
        replay = "events --since 1h --limit 1000"
        rows.append((history, replay, seconds, f"{len(events)} events"))
    return rows


def main(argv: list[str] | None = None) -> int:
    """Seed, time, print the table."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.stats", description=__doc__)
    parser.add_argument("--database-url", help="a server to use (default: embedded)")
    parser.add_argument("--tasks", type=int, default=1_000_000, help="finished tasks to insert")
    parser.add_argument("--repeat", type=int, default=5, help="timings per figure")
    args = parser.parse_args(argv)
    rows: list[tuple[str, str, float, str]] = []
    with open_server(args.database_url) as server:
        install(server.url)
        with psycopg.connect(server.url, autocommit=True) as conn:
            deploy_flows(conn, [stats_flow()])
        for span, history in _HISTORIES:
            seeded = seed_finished_tasks(server.url, args.tasks, span)
            print(f"{seeded['tasks']:,} finished tasks over {history}: inserted in "
                  f"{seeded['insert_s']:.1f} s", flush=True)  # fmt: skip
            rows += measure(server.url, args.repeat, history)
        facts = machine_facts(server)
    _print(facts, rows, args.tasks)
    return 0


def _print(facts: dict[str, Any], rows: list[tuple[str, str, float, str]], tasks: int) -> None:
    settings = facts["settings"]
    print(f"\n{facts['postgres']}; {facts['cores']} cores, {facts['cpu_model']}; "
          f"shared_buffers {settings['shared_buffers']}, work_mem {settings['work_mem']}; "
          f"load average at the end {os.getloadavg()}\n")  # fmt: skip
    print("| finished tasks in the tables | query | median time | returned |\n|---|---|---|---|")
    for history, label, seconds, what in rows:
        print(f"| {tasks:,} over {history} | {label} | {seconds * 1000:,.0f} ms | {what} |")


_HISTORIES = (
    (timedelta(hours=23), "the last 23 h (all in a 24 h window)"),
    (timedelta(days=30), "30 days"),
)


if __name__ == "__main__":
    sys.exit(main())
