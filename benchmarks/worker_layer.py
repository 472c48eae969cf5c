"""The real-Worker layer: ``pgflow.Worker`` with empty handlers, one per process.

Each process opens the Worker's pool and starts the Worker before the gate: it registers,
LISTENs and runs its start-up jobs, then waits at the gate where it would start claiming
(:class:`_GatedWorker`). So the clock counts claiming, running and reporting, not process
start-up: a Worker's start and stop take 22 transactions and 0.15-0.25 s on 2 cores, which
inside a 2-second drain made each added worker look like lost throughput. Handlers only
count themselves; when the crew has handled every expected task, each process asks its
Worker to stop gracefully, which stores the pending reports. A drain's end is when the
last Worker has returned, so the time includes that final flush and the release of its
leases (a few milliseconds).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import psycopg

from benchmarks.core_loop import CLAIM, COMPLETE, complete_params
from benchmarks.cpu import process_cpu
from benchmarks.crew import Member
from benchmarks.flows import FLOWS, set_counter
from benchmarks.warmup import SLUG, warm_pool

__all__ = ["available", "drain", "serve"]


def available() -> str | None:
    """None when ``pgflow.Worker`` can be imported, else why not."""
    try:
        from pgflow.worker import Worker  # noqa: F401
    except ImportError as exc:
        return f"pgflow.Worker is not available ({exc})"
    return None


def drain(member: Member, args: dict[str, Any]) -> dict[str, Any]:
    """Run a Worker until the crew has handled ``args["expected"]`` tasks."""
    expected = args["expected"]
    return asyncio.run(_run(member, args, lambda: member.count >= expected))


def serve(member: Member, args: dict[str, Any]) -> dict[str, Any]:
    """Run a Worker until the coordinator says stop."""
    return asyncio.run(_run(member, args, member.stopping))


_WORKER_ID = uuid.uuid4()


async def _warm_round(conn: psycopg.AsyncConnection[Any]) -> None:
    """One warm-up task claimed and completed by the functions the Worker calls."""
    if rows := await (await conn.execute(CLAIM, ([SLUG], _WORKER_ID, 1))).fetchall():
        await conn.execute(COMPLETE, complete_params(rows))


async def _run(member: Member, args: dict[str, Any], done: Any) -> dict[str, Any]:
    from pgflow.db.connection import open_async_pool
    from pgflow.worker import Worker

    set_counter(member.add)
    concurrency = args["concurrency"]
    url = args.get("worker_url") or args["url"]  # e.g. through PgBouncer (benchmarks.pooling)
    options = {k: args[k] for k in ("prepare_threshold",) if k in args}
    pool = await open_async_pool(url, min_size=2, max_size=concurrency + 3, **options)
    if args.get("warmup"):
        await warm_pool(pool, args["warmup"], _warm_round)
    cpu = [0.0]  # the process's CPU time when the gate opened

    class _GatedWorker(Worker):
        """Starts up, then waits at the crew's gate before its first claim."""

        async def _claim(self, *a: Any, **kw: Any) -> None:
            await asyncio.to_thread(member.ready)
            cpu[0] = process_cpu()
            await super()._claim(*a, **kw)

    try:
        worker = _GatedWorker(
            [FLOWS[slug] for slug in args["flows"]],
            url,
            listen_url=args.get("listen_url"),
            concurrency=concurrency,
            batch_size=args["batch"],
            pool=pool,
        )
        _, stop_requested = await asyncio.gather(worker.run_async(), _stop_when(done, worker))
        ended = time.monotonic()
        stopped_s = ended - stop_requested
        return {"ended": ended, "cpu_s": process_cpu() - cpu[0], "shutdown_s": stopped_s}
    finally:
        set_counter(None)
        await pool.close()


async def _stop_when(done: Any, worker: Any) -> float:
    while not done():
        await asyncio.sleep(0.005)
    worker.stop()
    return time.monotonic()
