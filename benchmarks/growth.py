"""Growth: put a large finished history in the tables, set-based, without running it.

Each finished task is a completed one-step run of ``bench_single`` (a ``runs`` row, a
``step_states`` row and a ``step_tasks`` row), dated before the benchmark so it looks like
yesterday's work. Run ids come from ``md5``, which spreads them over the primary-key
index like random UUIDs do. Then ``VACUUM ANALYZE``, as autovacuum would have done.
"""

from __future__ import annotations

import time
from typing import Any

import psycopg

__all__ = ["seed_history"]

_RUNS = """
insert into pgflow.runs (run_id, flow_slug, status, input, output, remaining_steps,
  started_at, completed_at, finished_at)
select md5('history' || i)::uuid, 'bench_single', 'completed', '{}', '{"task": null}', 0,
  t, t, t
from generate_series(1, %(n)s) i,
  lateral (select now() - interval '1 day' + i * interval '10 ms') x(t)
"""

_STEP_STATES = """
insert into pgflow.step_states (run_id, step_slug, flow_slug, step_index, step_type, status,
  remaining_deps, remaining_tasks, initial_tasks, output, created_at, started_at,
  completed_at)
select md5('history' || i)::uuid, 'task', 'bench_single', 0, 'single', 'completed', 0, 0, 1,
  'null', t, t, t
from generate_series(1, %(n)s) i,
  lateral (select now() - interval '1 day' + i * interval '10 ms') x(t)
"""

_STEP_TASKS = """
insert into pgflow.step_tasks (run_id, step_slug, task_index, flow_slug, status,
  attempts_count, output, queued_at, available_at, priority_at, started_at, completed_at)
select md5('history' || i)::uuid, 'task', 0, 'bench_single', 'completed', 1, 'null',
  t, t, t, t, t
from generate_series(1, %(n)s) i,
  lateral (select now() - interval '1 day' + i * interval '10 ms') x(t)
"""


def seed_history(url: str, tasks: int) -> dict[str, Any]:
    """Insert ``tasks`` finished one-step runs and vacuum; returns what it took."""
    began = time.monotonic()
    with psycopg.connect(url, autocommit=True) as conn:
        with conn.transaction():
            for statement in (_RUNS, _STEP_STATES, _STEP_TASKS):
                conn.execute(statement, {"n": tasks})
        inserted = time.monotonic() - began
        conn.execute("vacuum (analyze) pgflow.runs, pgflow.step_states, pgflow.step_tasks")
        size = conn.execute(
            "select pg_total_relation_size('pgflow.runs') + pg_total_relation_size("
            "'pgflow.step_states') + pg_total_relation_size('pgflow.step_tasks')"
        ).fetchone()
    return {
        "kind": "growth_seed",
        "tasks": tasks,
        "insert_seconds": inserted,
        "total_seconds": time.monotonic() - began,
        "tables_bytes": int(size[0]) if size else 0,
    }
