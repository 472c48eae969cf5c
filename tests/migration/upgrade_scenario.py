"""Runs left in every state by an old release, then finished by workers of this one.

:func:`leave_runs_in_every_state` uses only :class:`~tests.migration.upgrade_harness.
OldWorker` (the SQL API of the old schema) and records what workers of the new version
must still do; :func:`finish_with_new_workers` upgrades nothing itself: it runs a real
:class:`pgflow.Worker` in-process until every live run finished, while the old worker's
outstanding reports arrive late. Every handler records each execution in
:data:`EXECUTIONS`, so a test can prove that each task ran exactly once after the upgrade.

Timings are kept short: backoff and ``start_delay`` of 2 s, a lease of 2 s for the worker
that dies, retry delays of 0 elsewhere.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import psycopg

from pgflow import AsyncClient, Context, Flow, Run, Worker
from tests.migration.upgrade_harness import OldWorker, Row, Task

Execution = tuple[str, str, int, int]
"""(run_id, step_slug, task_index, attempt) of one handler call."""
EXECUTIONS: list[Execution] = []


def _ran(ctx: Context) -> None:
    EXECUTIONS.append((str(ctx.run_id), ctx.step_slug, ctx.task_index, ctx.attempt))


# A chain whose first step retries after 2 s and whose second step fails at once.
chain = Flow("upgrade_chain", input=int, max_attempts=3, base_delay=1)


@chain.step()
async def first(input: int, ctx: Context) -> int:
    _ran(ctx)
    return input + 1


@chain.step(depends_on=[first], max_attempts=1)
async def second(first: int, ctx: Context) -> int:
    _ran(ctx)
    return first * 10


# A step whose lease runs out soon: the worker holding it "dies" before the upgrade.
lease = Flow("upgrade_lease", input=int, base_delay=0)


@lease.step(timeout=2)
async def work(input: int, ctx: Context) -> int:
    _ran(ctx)
    return input * 3


# A root step that becomes ready only after its start_delay.
delayed = Flow("upgrade_delayed", input=int)


@delayed.step(start_delay=2)
async def later(input: int, ctx: Context) -> int:
    _ran(ctx)
    return input - 1


# A map whose tasks are half done at the upgrade, then a fan-in.
fanout = Flow("upgrade_map", input=list[int], base_delay=0)


@fanout.map()
async def square(n: int, ctx: Context) -> int:
    _ran(ctx)
    return n * n


@fanout.step(depends_on=[square])
async def total(square: list[int], ctx: Context) -> int:
    _ran(ctx)
    return sum(square)


# A diamond with one branch done at the upgrade: the other branch's completion, after it,
# releases the join's last dependency (a fan-in, which the completion now starts itself).
diamond = Flow("upgrade_diamond", input=int, base_delay=0)


@diamond.step()
async def root(input: int, ctx: Context) -> int:
    _ran(ctx)
    return input


@diamond.step(depends_on=[root])
async def left(root: int, ctx: Context) -> int:
    _ran(ctx)
    return root + 1


@diamond.step(depends_on=[root])
async def right(root: int, ctx: Context) -> int:
    _ran(ctx)
    return root + 2


@diamond.step(depends_on=[left, right])
async def join(left: int, right: int, ctx: Context) -> int:
    _ran(ctx)
    return left * right


FLOWS = (chain, lease, delayed, fanout, diamond)


@dataclass
class Scenario:
    """What the old release left behind, and what the new workers must do with it.

    Attributes:
        live: state name -> (run id, expected run output), for runs still to finish.
        finished: state name -> run id, for runs the upgrade must not touch.
        expected: every handler execution the new workers must make, each exactly once.
        not_before: (run id, step slug) -> the time before which that waiting task must
            not run (its retry backoff or start_delay).
        live_lease: a task leased to a worker that is still running; reported late.
        live_lease_output: what that worker reports.
        dead_lease: a task leased to a worker that died; its lease expires after the upgrade.
        cancelled_lease: a task of a run cancelled while it was leased.
    """

    live: dict[str, tuple[uuid.UUID, Any]] = field(default_factory=dict)
    finished: dict[str, uuid.UUID] = field(default_factory=dict)
    expected: list[Execution] = field(default_factory=list)
    not_before: dict[tuple[uuid.UUID, str], datetime] = field(default_factory=dict)
    live_lease: Task | None = None
    live_lease_output: Any = None
    dead_lease: Task | None = None
    cancelled_lease: Task | None = None

    def run_ids(self) -> dict[str, uuid.UUID]:
        """Every run the scenario started, by the state it was left in."""
        return {**self.finished, **{name: run_id for name, (run_id, _) in self.live.items()}}

    def expect(
        self, run_id: uuid.UUID, step_slug: str, task_index: int = 0, attempt: int = 1
    ) -> None:
        self.expected.append((str(run_id), step_slug, task_index, attempt))


def leave_runs_in_every_state(conn: psycopg.Connection[Any]) -> Scenario:
    """Start runs with the old SQL API and leave each in a different state.

    The order matters: a claim takes the oldest claimable task of a flow, so each run is
    claimed before the next run of its flow starts, and the dying worker's claim comes
    last, so that no claim before the upgrade expires its lease.
    """
    old, s = OldWorker(conn), Scenario()
    _finished_runs(old, s)
    _live_chain_runs(old, s)
    _half_done_map(old, s)
    _half_done_diamond(old, s)
    run_id = old.start("upgrade_delayed", 8)
    s.live["waiting on start_delay"] = (run_id, {"later": 7})
    s.not_before[run_id, "later"] = _available_at(conn, run_id)
    s.expect(run_id, "later")
    run_id = old.start("upgrade_lease", 7)
    s.dead_lease = old.claim_one("upgrade_lease", run_id)
    s.live["lease expiring after the upgrade"] = (run_id, {"work": 21})
    s.expect(run_id, "work", attempt=2)
    return s


def _finished_runs(old: OldWorker, s: Scenario) -> None:
    run_id = s.finished["completed"] = old.start("upgrade_chain", 1)
    old.complete(old.claim_one("upgrade_chain", run_id), 2)
    old.complete(old.claim_one("upgrade_chain", run_id), 20)
    run_id = s.finished["failed"] = old.start("upgrade_chain", 2)
    old.complete(old.claim_one("upgrade_chain", run_id), 3)
    old.fail(old.claim_one("upgrade_chain", run_id), "second failed for good")
    run_id = s.finished["cancelled"] = old.start("upgrade_chain", 3)
    s.cancelled_lease = old.claim_one("upgrade_chain", run_id)
    old.cancel(run_id)


def _live_chain_runs(old: OldWorker, s: Scenario) -> None:
    run_id = old.start("upgrade_chain", 4)
    retried = old.fail(old.claim_one("upgrade_chain", run_id), "transient")
    s.live["retrying"] = (run_id, {"second": 50})
    s.not_before[run_id, "first"] = retried["available_at"]
    s.expect(run_id, "first", attempt=2)
    s.expect(run_id, "second")
    run_id = old.start("upgrade_chain", 5)
    s.live_lease, s.live_lease_output = old.claim_one("upgrade_chain", run_id), 6
    s.live["leased, reported late"] = (run_id, {"second": 60})
    s.expect(run_id, "second")
    run_id = old.start("upgrade_chain", 6)
    s.live["queued"] = (run_id, {"second": 70})
    s.expect(run_id, "first")
    s.expect(run_id, "second")


def _half_done_map(old: OldWorker, s: Scenario) -> None:
    run_id = old.start("upgrade_map", [1, 2, 3, 4])
    done = old.claim("upgrade_map", run_id, n=2)
    for task in done:
        old.complete(task, task.input * task.input)
    s.live["map half done"] = (run_id, {"total": 30})
    for index in sorted({0, 1, 2, 3} - {t.task_index for t in done}):
        s.expect(run_id, "square", index)
    s.expect(run_id, "total")


def _half_done_diamond(old: OldWorker, s: Scenario) -> None:
    run_id = old.start("upgrade_diamond", 3)
    old.complete(old.claim_one("upgrade_diamond", run_id), 3)  # root
    branch = old.claim_one("upgrade_diamond", run_id)  # left or right: their tags tie
    old.complete(branch, 3 + (1 if branch.step_slug == "left" else 2))
    s.live["diamond, one branch done"] = (run_id, {"join": 20})
    s.expect(run_id, "right" if branch.step_slug == "left" else "left")
    s.expect(run_id, "join")


def _available_at(conn: psycopg.Connection[Any], run_id: uuid.UUID) -> datetime:
    row = conn.execute(
        "select max(available_at) from pgflow.step_tasks where run_id = %s", [run_id]
    ).fetchone()
    assert row is not None and row[0] is not None
    return row[0]  # type: ignore[no-any-return]


@dataclass
class Outcome:
    """What finishing the scenario with new workers produced."""

    runs: dict[str, Run]
    live_lease_report: Row
    cancelled_lease_report: Row
    executions: list[Execution]


async def finish_with_new_workers(url: str, s: Scenario, timeout: float = 30.0) -> Outcome:
    """Run a new-version worker until every live run finished; the old worker reports late."""
    EXECUTIONS.clear()
    worker = Worker(
        list(FLOWS),
        url,
        poll_interval=0.2,
        shutdown_grace=5.0,
        heartbeat_interval=1.0,
        retry_base_delay=0.0,
    )
    running = asyncio.create_task(worker.run_async(), name="upgrade worker")
    try:
        reports = await asyncio.to_thread(_late_reports, url, s)
        async with AsyncClient(url) as client:
            runs = {
                name: await client.wait(run_id, timeout) for name, (run_id, _) in s.live.items()
            }
    finally:
        worker.stop()
        await asyncio.wait_for(running, 10)
    return Outcome(runs, *reports, executions=list(EXECUTIONS))


def _late_reports(url: str, s: Scenario) -> tuple[Row, Row]:
    """The still-running old worker reports its lease, and the cancelled run's task."""
    assert s.live_lease is not None and s.cancelled_lease is not None
    with psycopg.connect(url, autocommit=True) as conn:
        old = OldWorker(conn)
        return old.complete(s.live_lease, s.live_lease_output), old.complete(s.cancelled_lease, 0)
