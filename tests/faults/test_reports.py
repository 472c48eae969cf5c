"""Duplicate, late and stale-attempt reports interleaved with lease expiry and release.

Two tests against the SQL core of a real database:

* a model-based (hypothesis) test drives a map run with random interleavings of claims by
  two workers, leases running out, sweeps, releases, and completion / failure reports
  for the current, a stale, a future or no attempt, and checks after every operation
  that the tables equal what a small Python model of the documented rules predicts;
* a test with real, unsimulated lease expiry (a 1-second timeout).

Either way a report changes a task only while the task is leased to that attempt, so at
most one completion per task is ever accepted, and terminal states are never left.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import psycopg
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test
from psycopg.types.json import Jsonb

from tests.faults.audit import install_audit
from tests.integration.sql.helpers import claim, define, one, q, start, tasks

FLOW = "reports"
MAX_ATTEMPTS = 3
WIDTH = 3  # map tasks per run
WORKERS = (uuid.UUID(int=1), uuid.UUID(int=2))
LIVE = ("queued", "started")
TERMINAL = ["completed", "failed", "cancelled", "skipped"]


@dataclass
class Task:
    """The model of one task row."""

    status: str = "queued"
    attempts: int = 0  # claims so far: the fencing token, never handed out twice
    releases: int = 0  # claims given back by a stopping worker: they use up no attempt
    worker: uuid.UUID | None = None
    expired: int = 0  # when its lease ran out (an increasing counter); 0: it has not
    output: Any = None


@dataclass
class Model:
    """What the documented rules say the run looks like."""

    tasks: list[Task] = field(default_factory=lambda: [Task() for _ in range(WIDTH)])
    run: str = "started"

    def fail_attempt(self, task: Task) -> None:
        """A failed attempt (reported, or its lease expired): retry or fail the run."""
        task.worker, task.expired = None, 0
        if task.attempts - task.releases < MAX_ATTEMPTS:
            task.status = "queued"
            return
        task.status = "failed"
        self.run = "failed"
        for other in self.tasks:
            if other.status in LIVE:
                other.status, other.worker, other.expired = "cancelled", None, 0

    def expire(self) -> None:
        """Expired leases are handled oldest first (a failing one may cancel the rest)."""
        for task in sorted(self.tasks, key=lambda t: t.expired):
            if task.status == "started" and task.expired:
                self.fail_attempt(task)

    def accepts(self, task: Task, attempt: int | None) -> bool:
        return task.status == "started" and attempt in (None, task.attempts)


def attempt_for(task: Task, which: str) -> int | None:
    return {"current": task.attempts, "stale": task.attempts - 1, "future": task.attempts + 1}.get(
        which
    )


def report_machine(conn: psycopg.Connection[Any]) -> type[RuleBasedStateMachine]:
    class Reports(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.model = Model()
            self.run_id = start(conn, FLOW, list(range(WIDTH)))["run_id"]
            self.reports = 0
            self.clock = 0

        def teardown(self) -> None:
            event(f"run ended {self.model.run}")
            # nothing of this run may be claimed by the next example's claims
            q(conn, "select pgflow.cancel_run(%s)", self.run_id)

        def _key(self, index: int) -> tuple[Any, ...]:
            return (self.run_id, "m", index)

        @rule(worker=st.sampled_from(WORKERS))
        def claim(self, worker: uuid.UUID) -> None:
            rows = q(
                conn,
                "select * from pgflow.claim_tasks(%s, %s, 100) where run_id = %s",
                [FLOW],
                worker,
                self.run_id,
            )
            self.model.expire()
            for task in self.model.tasks:
                if task.status == "queued":
                    task.status, task.worker = "started", worker
                    task.attempts += 1
            claimed = {r["task_index"]: r["attempt"] for r in rows}
            wanted = {i: t.attempts for i, t in enumerate(self.model.tasks) if t.worker == worker}
            assert claimed.items() <= wanted.items()

        @rule(index=st.integers(0, WIDTH - 1))
        def lease_runs_out(self, index: int) -> None:
            # the passage of time, simulated: this task's lease is now in the past
            q(
                conn,
                "update pgflow.step_tasks set leased_until = now() - interval '1 second' "
                "where (run_id, step_slug, task_index) = (%s, %s, %s) and status = 'started'",
                *self._key(index),
            )
            task = self.model.tasks[index]
            if task.status == "started":
                self.clock += 1
                task.expired = self.clock

        @rule()
        def sweep(self) -> None:
            q(conn, "select pgflow.sweep_expired_tasks()")
            self.model.expire()

        @rule(worker=st.sampled_from(WORKERS))
        def release(self, worker: uuid.UUID) -> None:
            q(conn, "select pgflow.release_tasks(%s)", worker)
            for task in self.model.tasks:
                if task.status == "started" and task.worker == worker:
                    task.status, task.worker, task.expired = "queued", None, 0
                    task.releases += 1

        @rule(index=st.integers(0, WIDTH - 1), copies=st.integers(1, 2))
        def complete_current(self, index: int, copies: int) -> None:
            # the common case, drawn as often as all the odd ones together
            self.complete(index, "current", copies)

        @rule(
            index=st.integers(0, WIDTH - 1),
            which=st.sampled_from(["current", "stale", "future", "none"]),
            copies=st.integers(1, 2),
        )
        def complete(self, index: int, which: str, copies: int) -> None:
            task = self.model.tasks[index]
            attempt = attempt_for(task, which)
            self.reports += 1
            output = f"report {self.reports}"
            for _ in range(copies):  # a duplicate arrives right after the original
                q(
                    conn,
                    "select pgflow.complete_task(%s, %s, %s, %s, %s)",
                    *self._key(index),
                    Jsonb(output),
                    attempt,
                )
                if self.model.accepts(task, attempt):
                    task.status, task.output, task.worker, task.expired = (
                        "completed", output, None, 0,
                    )  # fmt: skip
                    if all(t.status == "completed" for t in self.model.tasks):
                        self.model.run = "completed"

        @rule(
            index=st.integers(0, WIDTH - 1),
            which=st.sampled_from(["current", "stale", "future", "none"]),
        )
        def fail(self, index: int, which: str) -> None:
            task = self.model.tasks[index]
            attempt = attempt_for(task, which)
            q(
                conn,
                "select pgflow.fail_task(%s, %s, %s, 'boom', %s)",
                *self._key(index),
                attempt,
            )
            if self.model.accepts(task, attempt):
                self.model.fail_attempt(task)

        @invariant()
        def tables_match_the_model(self) -> None:
            rows = tasks(conn, self.run_id)
            actual = [(r["status"], r["attempts_count"], r["output"]) for r in rows]
            expected = [(t.status, t.attempts, t.output) for t in self.model.tasks]
            assert actual == expected, (actual, expected)
            run = one(conn, "select status from pgflow.runs where run_id = %s", self.run_id)
            assert run["status"] == self.model.run
            leased = [r["leased_until"] is not None for r in rows]
            assert leased == [t.status == "started" for t in self.model.tasks]

    return Reports


def test_reports_and_lease_expiry_in_any_order_follow_the_model(
    conn: psycopg.Connection[Any], db_url: str
) -> None:
    define(conn, FLOW, ("m", [], {"step_type": "map"}), max_attempts=MAX_ATTEMPTS, base_delay=0)
    install_audit(db_url)
    run_state_machine_as_test(
        report_machine(conn),
        settings=settings(
            max_examples=80,
            stateful_step_count=40,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )
    left = q(conn, "select * from faults.transitions where old_status = any(%s)", TERMINAL)
    assert left == []  # across every generated run, no row ever left a terminal state
    twice = q(
        conn,
        "select run_id, task_index from faults.transitions where tbl = 'step_tasks' "
        "and new_status = 'completed' group by 1, 2 having count(*) > 1",
    )
    assert twice == []


def wait_past(conn: psycopg.Connection[Any], run_id: Any) -> None:
    """Wait (database clock) until the run's lease has run out; bounded generously."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        row = one(
            conn,
            "select bool_and(leased_until < now()) as out from pgflow.step_tasks "
            "where run_id = %s and status = 'started'",
            run_id,
        )
        if row["out"]:
            return
        time.sleep(0.05)
    raise AssertionError("the lease never ran out")


def test_real_lease_expiry_fences_the_late_attempt_and_keeps_the_first_accepted(
    conn: psycopg.Connection[Any],
) -> None:
    define(conn, "expiring", ("a", []), timeout=1, base_delay=0, max_attempts=3)
    run_id = start(conn, "expiring")["run_id"]
    (first,) = claim(conn, "expiring")
    wait_past(conn, run_id)
    (second,) = claim(conn, "expiring")  # the claim itself expired attempt 1
    assert (first["attempt"], second["attempt"]) == (1, 2)

    def report(kind: str, task: dict[str, Any], value: str) -> dict[str, Any]:
        if kind == "complete":
            sql = "select * from pgflow.complete_task(%s, %s, %s, %s, %s)"
            args: list[Any] = [Jsonb(value)]
        else:
            sql = "select * from pgflow.fail_task(%s, %s, %s, %s, %s)"
            args = [value]
        return one(conn, sql, task["run_id"], "a", 0, *args, task["attempt"])

    assert report("complete", first, "late")["status"] == "started"  # fenced
    assert report("fail", first, "late failure")["status"] == "started"  # fenced
    assert report("complete", second, "ok")["output"] == "ok"  # accepted
    assert report("complete", second, "duplicate")["output"] == "ok"  # no change
    assert report("fail", second, "too late")["status"] == "completed"  # no change
    assert report("complete", first, "very late")["output"] == "ok"
    row = one(conn, "select status, output, remaining_steps from pgflow.runs where run_id = %s",
              run_id)  # fmt: skip
    assert row == {"status": "completed", "output": {"a": "ok"}, "remaining_steps": 0}
