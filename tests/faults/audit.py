"""What the fault tests check after a load, from an audit trail kept by Postgres itself.

:func:`install_audit` adds, to a test database only, a ``faults`` schema with

* ``faults.executions``: one row per handler execution, written by the handlers
  (:mod:`tests.faults.flows`): what ran, at least once;
* ``faults.transitions``: one row per status change of a run, step state or task, written
  by ``AFTER`` row triggers on the pgflow tables, so in the very transaction that made the
  change: a rolled-back change leaves no row, a committed one always does.

:func:`check_invariants` then asserts "nothing is lost" (docs/guarantees.md) and the exactly-once
guarantees, and returns the figures of the load.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import psycopg
from psycopg.rows import dict_row

AUDIT_SQL = """
create schema faults;
create table faults.executions (
  id bigserial primary key, run_id uuid not null, step_slug text not null,
  task_index int not null, attempt int not null, pid int not null,
  at timestamptz not null default clock_timestamp()
);
create table faults.transitions (
  id bigserial primary key, tbl text not null, run_id uuid not null, step_slug text,
  task_index int, old_status text, new_status text not null, attempt int, output jsonb,
  at timestamptz not null default clock_timestamp()
);
-- the runtime tables are partitioned: a row trigger fires on the partition (step_tasks_p202611,
-- step_tasks_default), recorded under its table's name
create function faults.audit() returns trigger language plpgsql as $$
declare
  r jsonb := to_jsonb(new);
  tbl text := regexp_replace(tg_table_name, '_(p[0-9]{6}|default)$', '');
begin
  insert into faults.transitions
    (tbl, run_id, step_slug, task_index, old_status, new_status, attempt, output)
  values (tbl, (r ->> 'run_id')::uuid, r ->> 'step_slug',
    (r ->> 'task_index')::int, case when tg_op = 'UPDATE' then to_jsonb(old) ->> 'status' end,
    new.status, (r ->> 'attempts_count')::int,
    case when tbl = 'step_tasks' and new.status = 'completed' then r -> 'output' end);
  return null;
end;
$$;
create trigger faults_insert after insert on pgflow.runs
  for each row execute function faults.audit();
create trigger faults_update after update on pgflow.runs
  for each row when (old.status is distinct from new.status) execute function faults.audit();
create trigger faults_insert after insert on pgflow.step_states
  for each row execute function faults.audit();
create trigger faults_update after update on pgflow.step_states
  for each row when (old.status is distinct from new.status) execute function faults.audit();
create trigger faults_insert after insert on pgflow.step_tasks
  for each row execute function faults.audit();
create trigger faults_update after update on pgflow.step_tasks
  for each row when (old.status is distinct from new.status) execute function faults.audit();
"""

TERMINAL = ("completed", "failed", "cancelled", "skipped")


def install_audit(url: str) -> None:
    """Create the ``faults`` schema and the audit triggers in a test database."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(AUDIT_SQL.encode())


@dataclass
class Figures:
    """What a load did, for the closing report.

    Attributes:
        runs: runs started.
        tasks: task rows (each completed exactly once when the checks pass).
        executions: handler executions recorded (at least ``tasks``).
        requeued: attempts that ended without a completion and went back to the queue
            (lease expired, handler failed, released).
        workers_killed: worker processes killed with SIGKILL.
        workers_started: worker processes started in all.
        restarts: Postgres restarts and outages.
        terminated: backends killed with pg_terminate_backend.
        lost: runs or tasks that did not complete, or completed with a wrong output.
        duplicates: accepted completions beyond one per task, run or step.
    """

    runs: int = 0
    tasks: int = 0
    executions: int = 0
    requeued: int = 0
    workers_killed: int = 0
    workers_started: int = 0
    restarts: int = 0
    terminated: int = 0
    lost: int = 0
    duplicates: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def _rows(conn: psycopg.Connection[Any], statement: str, *params: Any) -> list[dict[str, Any]]:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(statement.encode(), params or None)
        return cur.fetchall()


def _scalar(conn: psycopg.Connection[Any], statement: str, *params: Any) -> int:
    (row,) = _rows(conn, statement, *params)
    return int(next(iter(row.values())))


def strip_attempts(value: Any) -> Any:
    """A run output without the handlers' attempt numbers: ``{"third": 13}``."""
    return {slug: out["v"] for slug, out in value.items()}


def check_invariants(url: str, expected: Mapping[Any, Any], figures: Figures) -> Figures:
    """Assert that nothing was lost or accepted twice; fill in and return ``figures``.

    Args:
        url: the test database.
        expected: the expected run output (without attempts) of every run started, by id.
        figures: the counts the test kept (kills, restarts, ...); the rest is added here.
    """
    with psycopg.connect(url, autocommit=True) as conn:
        runs = {r["run_id"]: r for r in _rows(conn, "select * from pgflow.runs")}
        figures.runs = len(runs)
        figures.tasks = _scalar(conn, "select count(*) from pgflow.step_tasks")
        figures.executions = _scalar(conn, "select count(*) from faults.executions")
        figures.requeued = _scalar(
            conn,
            "select count(*) from faults.transitions where tbl = 'step_tasks' "
            "and old_status = 'started' and new_status = 'queued'",
        )
        wrong = {
            rid: (r["status"], r["output"], r["error_message"])
            for rid, r in runs.items()
            if r["status"] != "completed" or strip_attempts(r["output"]) != expected.get(rid)
        }
        unfinished_tasks = _rows(
            conn,
            "select run_id, step_slug, task_index, status, leased_until from pgflow.step_tasks "
            "where status <> 'completed' or leased_until is not null",
        )
        figures.lost = len(wrong) + len(unfinished_tasks) + len(set(expected) - set(runs))
        duplicates = _rows(
            conn,
            "select tbl, run_id, step_slug, task_index, count(*) as n from faults.transitions "
            "where new_status = 'completed' group by 1, 2, 3, 4 having count(*) > 1",
        )
        figures.duplicates = sum(d["n"] - 1 for d in duplicates)
        left_terminal = _rows(
            conn,
            "select * from faults.transitions where old_status = any(%s)",
            list(TERMINAL),
        )
        # The accepted completion of each task is the one of the attempt that held the
        # lease (its output names its attempt), and that attempt really executed.
        foreign = _rows(
            conn,
            """
            select t.run_id, t.step_slug, t.task_index, t.attempts_count, t.output
            from pgflow.step_tasks t
            where t.status = 'completed' and (
              (t.output ->> 'attempt')::int is distinct from t.attempts_count
              or not exists (
                select 1 from faults.executions e
                where e.run_id = t.run_id and e.step_slug = t.step_slug
                  and e.task_index = t.task_index and e.attempt = t.attempts_count))
            """,
        )
        completions = _scalar(
            conn,
            "select count(distinct (run_id, step_slug, task_index)) from faults.transitions "
            "where tbl = 'step_tasks' and new_status = 'completed'",
        )
    assert not wrong, f"runs not completed with the expected output: {list(wrong.items())[:5]}"
    assert set(expected) <= set(runs), "runs the clients started are missing"
    assert not unfinished_tasks, f"tasks left unfinished or leased: {unfinished_tasks[:5]}"
    assert figures.duplicates == 0, f"completions accepted twice: {duplicates[:5]}"
    assert not left_terminal, f"rows that left a terminal status: {left_terminal[:5]}"
    assert not foreign, f"completions not from the leased attempt: {foreign[:5]}"
    assert completions == figures.tasks
    assert figures.executions >= figures.tasks
    return figures
