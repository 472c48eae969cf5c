"""The SQL-core layer: a minimal loop per process, one connection, claim → complete.

This is the fastest a Python worker could drive the SQL core: no handler, no pool, no
asyncio, one autocommit connection with server-side prepared statements. Each claim
fetches every column a real worker needs (built input, flow input, deadline); each batch
is reported with one ``complete_tasks`` call, fenced by attempt. Outputs are those of the
benchmark flows' empty handlers (:func:`benchmarks.flows.core_output`).

Commands (run by :class:`benchmarks.crew.Crew` members):

- :func:`drain`: work until the crew has completed ``expected`` tasks;
- :func:`serve`: a LISTEN-driven worker that runs until stopped (latency workloads);
- :func:`dispatch`: one LISTEN-driven worker timing step-to-step dispatch in chains.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from typing import Any

import psycopg

from benchmarks.cpu import process_cpu
from benchmarks.crew import Member
from benchmarks.flows import CHAIN_LENGTH, core_output
from benchmarks.warmup import ROUNDS, SLUG
from pgflow._json import jsonb

__all__ = ["CoreWorker", "complete_params", "dispatch", "drain", "serve"]

CLAIM = (
    "select run_id, flow_slug, step_slug, task_index, attempt, input, flow_input, deadline"
    " from pgflow.claim_tasks(%s::text[], %s::uuid, %s::int)"
)
COMPLETE = (
    "select count(*) from pgflow.complete_tasks("
    "%s::uuid[], %s::text[], %s::int[], %s::jsonb[], %s::int[])"
)
_Row = tuple[Any, ...]


class CoreWorker:
    """One connection that claims and completes tasks of some flows."""

    def __init__(self, url: str, flows: Sequence[str], batch: int, *, listen: bool) -> None:
        self.conn = psycopg.connect(url, autocommit=True, prepare_threshold=0)
        self.flows = list(flows)
        self.batch = batch
        self.worker_id = uuid.uuid4()
        self.claims = 0
        self.empty_claims = 0
        if listen:
            self.conn.execute("listen pgflow_tasks")
        # compile the top-level plpgsql functions and prepare both statements
        self.conn.execute(CLAIM, ([], self.worker_id, 0)).fetchall()
        self.conn.execute(COMPLETE, ([], [], [], [], []))

    def claim(self) -> list[_Row]:
        """Claim up to ``batch`` tasks."""
        rows = self.conn.execute(CLAIM, (self.flows, self.worker_id, self.batch)).fetchall()
        self.claims += 1
        self.empty_claims += not rows
        return rows

    def complete(self, rows: Sequence[_Row]) -> None:
        """Report the claimed tasks as completed, in one transaction."""
        self.conn.execute(COMPLETE, complete_params(rows))

    def warm(self) -> None:
        """Work a few warm-up tasks on this connection (:mod:`benchmarks.warmup`)."""
        for _ in range(ROUNDS):
            if rows := self.conn.execute(CLAIM, ([SLUG], self.worker_id, 1)).fetchall():
                self.complete(rows)

    def wait(self, timeout: float) -> bool:
        """Wait for a ``pgflow_tasks`` notification (or one already received)."""
        return any(True for _ in self.conn.notifies(timeout=timeout, stop_after=1))

    def discard_notifications(self) -> None:
        """Drop notifications received so far."""
        for _ in self.conn.notifies(timeout=0):
            pass

    def stats(self) -> dict[str, int]:
        """Claims made, and how many found nothing."""
        return {"claims": self.claims, "empty_claims": self.empty_claims}

    def close(self) -> None:
        """Close the connection (its backend flushes its statistics on exit)."""
        self.conn.close()


def complete_params(rows: Sequence[_Row]) -> tuple[list[Any], ...]:
    """The parameters of :data:`COMPLETE` for rows :data:`CLAIM` returned: each task
    completed with what its empty handler returns (:func:`benchmarks.flows.core_output`)."""
    return (
        [r[0] for r in rows],
        [r[2] for r in rows],
        [r[3] for r in rows],
        [jsonb(core_output(r[1], r[2], r[5])) for r in rows],
        [r[4] for r in rows],
    )


def drain(member: Member, args: dict[str, Any]) -> dict[str, Any]:
    """Claim and complete until the crew has completed ``args["expected"]`` tasks."""
    worker = CoreWorker(args["url"], args["flows"], args["batch"], listen=True)
    try:
        expected, ended, done = args["expected"], None, 0
        if args.get("warmup"):
            worker.warm()
        member.ready()
        cpu = process_cpu()
        while member.count < expected:
            rows = worker.claim()
            if not rows:
                worker.wait(0.05)
                continue
            worker.complete(rows)
            done += len(rows)
            if member.add(len(rows)) >= expected:
                ended = time.monotonic()
        return {"ended": ended, "tasks": done, "cpu_s": process_cpu() - cpu, **worker.stats()}
    finally:
        worker.close()


def serve(member: Member, args: dict[str, Any]) -> dict[str, Any]:
    """Work whenever notified, until the coordinator says stop.

    Returns, besides the claim counts, ``events``: for every claim that got tasks, when
    the worker woke, when the claim returned and when the completion returned.
    """
    worker = CoreWorker(args["url"], args["flows"], args["batch"], listen=True)
    events: list[tuple[float, float, float]] = []
    try:
        member.ready()
        woke = time.monotonic()
        while not member.stopping():
            rows = worker.claim()
            if rows:
                claimed = time.monotonic()
                worker.complete(rows)
                events.append((woke, claimed, time.monotonic()))
                member.add(len(rows))
            elif worker.wait(0.1):
                woke = time.monotonic()
        return {"events": events, **worker.stats()}
    finally:
        worker.close()


def dispatch(member: Member, args: dict[str, Any]) -> dict[str, Any]:
    """Time every step-to-step dispatch of ``args["runs"]`` chains, one chain at a time.

    Dispatch = this worker's ``complete_tasks`` for step k has returned (committed) →
    the ``claim_tasks`` that returns step k+1's task has returned. The worker claims only
    when notified, as an idle worker does. ``wake`` is the part until the notification
    was in hand.
    """
    worker = CoreWorker(args["url"], ["bench_chain"], 1, listen=True)
    starter = psycopg.connect(args["url"], autocommit=True)
    samples: list[tuple[float, float]] = []
    try:
        member.ready()
        for _ in range(args["runs"]):
            worker.discard_notifications()
            starter.execute("select pgflow.start_flow('bench_chain', '{}'::jsonb)")
            committed = _claim_when_notified(worker)[2]
            for _ in range(CHAIN_LENGTH - 1):
                woke, claimed, done = _claim_when_notified(worker)
                samples.append((woke - committed, claimed - committed))
                committed = done
            time.sleep(0.01)  # let the system go idle between chains
        return {"samples": samples}
    finally:
        starter.close()
        worker.close()


def _claim_when_notified(worker: CoreWorker) -> tuple[float, float, float]:
    """Wait for a notification, claim, complete; returns (woke, claimed, committed) times."""
    while True:
        if not worker.wait(5.0):
            raise TimeoutError("no task notification within 5 s")
        woke = time.monotonic()
        rows = worker.claim()
        claimed = time.monotonic()
        if rows:
            worker.complete(rows)
            return woke, claimed, time.monotonic()
