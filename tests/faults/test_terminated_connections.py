"""Worker connections killed with ``pg_terminate_backend`` in the middle of a claim and
in the middle of a completion, at a chosen point, by real worker processes.

A test-only trigger makes the worker's transaction wait on an advisory lock the test
holds, right after the claim (or the completion) has changed the task row and before it
commits; the test then terminates that backend. Postgres rolls the transaction back, so
the change never happened; the worker retries on a new connection and the run completes
with each task completed exactly once. (Random terminations under load are in
``test_kill_and_restart.py``.)
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import psycopg
import pytest

from pgflow import Client
from tests.faults.audit import Figures, check_invariants
from tests.faults.fleet import Fleet
from tests.faults.flows import chain, expected_output
from tests.faults.test_kill_and_restart import prepare

LOCK_KEY = 4242
BLOCKER_SQL = f"""
create table faults.block (status text primary key);
create function faults.block() returns trigger language plpgsql as $$
begin
  if exists (select 1 from faults.block b where b.status = new.status) then
    perform pg_advisory_xact_lock({LOCK_KEY});
  end if;
  return null;
end;
$$;
create trigger faults_block after update on pgflow.step_tasks for each row
  when (old.status is distinct from new.status) execute function faults.block();
-- leases long enough that no expiry interferes while the test holds the lock
select pgflow.create_flow('fault_chain', max_attempts => 25, base_delay => 0, timeout => 60);
"""


def blocked_backend(conn: psycopg.Connection[Any], fleet: Fleet, function: str) -> int:
    """The pid of the worker backend waiting on the test's lock inside ``function``."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        row = conn.execute(
            "select pid from pg_stat_activity where datname = current_database() "
            "and wait_event = 'advisory' and query like %s",
            [f"%{function}%"],
        ).fetchone()
        if row is not None:
            return int(row[0])
        time.sleep(0.02)
    raise AssertionError(f"no worker blocked inside {function}\n{fleet.log_tail()}")


def transitions(conn: psycopg.Connection[Any], run_id: Any, step: str) -> list[tuple[Any, ...]]:
    return conn.execute(
        "select old_status, new_status, attempt from faults.transitions "
        "where tbl = 'step_tasks' and run_id = %s and step_slug = %s order by id",
        [run_id, step],
    ).fetchall()


@pytest.mark.parametrize(
    ("status", "function"),
    [("started", "claim_tasks"), ("completed", "complete_tasks")],
    ids=["during-claim", "during-completion"],
)
def test_a_terminated_transaction_leaves_nothing_and_the_worker_retries(
    db_url: str, logs: Path, figures: Figures, status: str, function: str
) -> None:
    prepare(db_url)
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(BLOCKER_SQL.encode())
        conn.execute("insert into faults.block values (%s)", [status])
    with (
        Fleet(db_url, logs, concurrency=2) as fleet,
        Client(db_url) as client,
        psycopg.connect(db_url, autocommit=True) as admin,
        psycopg.connect(db_url) as holder,  # a transaction holding the advisory lock
    ):
        holder.execute("select pg_advisory_xact_lock(%s)", [LOCK_KEY])
        fleet.spawn(1)
        run = client.start(chain, {"n": 1})
        pid = blocked_backend(admin, fleet, function)
        before = transitions(admin, run.run_id, "first")
        assert admin.execute("select pg_terminate_backend(%s)", [pid]).fetchone() == (True,)
        figures.terminated = 1
        admin.execute("delete from faults.block")
        holder.commit()  # releases the lock: retries and other waiters go ahead
        done = client.wait(run.run_id, timeout=120)
        after = transitions(admin, run.run_id, "first")
    assert done.status == "completed"
    # The terminated transaction left no trace: the task went queued -> started ->
    # completed once, by attempt 1, whose report (or claim) was simply retried.
    assert before == after[: len(before)]
    assert after == [(None, "queued", 0), ("queued", "started", 1), ("started", "completed", 1)]
    check_invariants(db_url, {run.run_id: expected_output(chain.slug, {"n": 1})}, figures)
    assert figures.executions == 3  # no handler ran twice: only the SQL call was retried
