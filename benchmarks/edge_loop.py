"""Drivers shaped like pgflow's Edge Worker: poll a batch, then one completion per task.

Both layers run the loop of pgflow 0.8.1's Edge Worker (``BatchProcessor``, ``StepTaskPoller``,
``PgflowSqlClient``) with its defaults: a pool of ``edge_connections`` (4) connections
without prepared statements, batches of ``edge_batch`` (10), at most ``edge_concurrency``
(10) tasks in flight, empty handlers. One batch at a time: poll, then run every task of
the batch (each completion on a connection of the pool), then poll again.

- ``pgflow_drain`` (layer ``pgflow``), against pgflow 0.8.1's SQL
  (:mod:`benchmarks.pgflow_ts`): register the worker in ``pgflow.workers``; poll =
  ``pgmq.read_with_poll(queue_name => flow, vt => 2, qty => 10, max_poll_seconds => 2,
  poll_interval_ms => 100)`` then ``pgflow.start_tasks(flow, msg_ids, worker_id)``; each
  task = ``pgflow.complete_task(run_id, step_slug, task_index, output)``; a heartbeat every
  5 s, as the Edge Worker's lifecycle does.
- ``sqlapi_drain`` (layer ``sqlapi``), against our SQL API, same shape: poll =
  ``pgflow.claim_tasks(flows, worker_id, 10)``; each task = ``pgflow.complete_task(run_id,
  step_slug, task_index, output, attempt)``. An empty claim waits for a ``pgflow_tasks``
  notification (at most 50 ms) on one more connection, as our workers do.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import psycopg
from psycopg_pool import AsyncConnectionPool

from benchmarks.cpu import process_cpu
from benchmarks.crew import Member
from benchmarks.flows import core_output
from benchmarks.warmup import SLUG, warm_pool
from pgflow._json import jsonb

__all__ = ["pgflow_drain", "sqlapi_drain", "ts_output"]

HEARTBEAT_S = 5.0
_Task = tuple[Any, ...]
_Conn = psycopg.AsyncConnection[Any]

TS_READ = (
    "select msg_id from pgmq.read_with_poll(queue_name => %s, vt => %s, qty => %s,"
    " max_poll_seconds => %s, poll_interval_ms => %s)"
)
TS_START = (
    "select run_id, step_slug, task_index, input"
    " from pgflow.start_tasks(flow_slug => %s, msg_ids => %s::bigint[], worker_id => %s::uuid)"
)
TS_COMPLETE = (
    "select pgflow.complete_task(run_id => %s::uuid, step_slug => %s::text,"
    " task_index => %s::int, output => %s::jsonb)"
)
TS_REGISTER = (
    "insert into pgflow.workers (worker_id, queue_name, function_name) values (%s, %s, 'bench')"
)
TS_HEARTBEAT = (
    "update pgflow.workers set last_heartbeat_at = clock_timestamp() where worker_id = %s"
)
API_CLAIM = (
    "select run_id, step_slug, task_index, input, attempt, flow_slug"
    " from pgflow.claim_tasks(%s::text[], %s::uuid, %s::int)"
)
API_COMPLETE = "select pgflow.complete_task(%s::uuid, %s::text, %s::int, %s::jsonb, %s::int)"


def ts_output(flow_slug: str, step_slug: str, task_input: Any) -> Any:
    """What an empty pgflow handler returns (``null``; the fan-out root returns its array)."""
    if flow_slug == "bench_fanout" and step_slug == "items":
        return list(range(task_input["run"]["n"]))
    return None


def pgflow_drain(member: Member, args: dict[str, Any]) -> dict[str, Any]:
    """Crew command: pgflow 0.8.1's Edge Worker loop until the crew completed the work."""
    return asyncio.run(_pgflow(member, args))


def sqlapi_drain(member: Member, args: dict[str, Any]) -> dict[str, Any]:
    """Crew command: the same loop against our SQL API."""
    return asyncio.run(_sqlapi(member, args))


async def _pgflow(member: Member, args: dict[str, Any]) -> dict[str, Any]:
    flow, worker_id = args["flows"][0], uuid.uuid4()
    async with _pool(args) as pool:
        async with pool.connection() as conn:
            await conn.execute(TS_REGISTER, [worker_id, flow])
        beat = [time.monotonic()]

        async def poll() -> list[_Task]:
            async with pool.connection() as conn:
                if time.monotonic() - beat[0] >= HEARTBEAT_S:
                    await conn.execute(TS_HEARTBEAT, [worker_id])
                    beat[0] = time.monotonic()
                cur = await conn.execute(TS_READ, [flow, 2, args["batch"], 2, 100])
                ids = [row[0] for row in await cur.fetchall()]
                if not ids:
                    return []
                cur = await conn.execute(TS_START, [flow, ids, worker_id])
                return list(await cur.fetchall())

        async def complete(conn: _Conn, task: _Task) -> None:
            output = jsonb(ts_output(flow, task[1], task[3]))
            await conn.execute(TS_COMPLETE, [task[0], task[1], task[2], output])

        async def warm(conn: _Conn) -> None:
            cur = await conn.execute(TS_READ, [SLUG, 2, 1, 1, 100])
            ids = [row[0] for row in await cur.fetchall()]
            if ids:
                cur = await conn.execute(TS_START, [SLUG, ids, worker_id])
                for task in await cur.fetchall():
                    await conn.execute(TS_COMPLETE, [task[0], task[1], task[2], jsonb(None)])

        return await _loop(member, args, pool, poll, complete, warm)


async def _sqlapi(member: Member, args: dict[str, Any]) -> dict[str, Any]:
    worker_id = uuid.uuid4()
    listener = await psycopg.AsyncConnection.connect(args["url"], autocommit=True)
    try:
        await listener.execute("listen pgflow_tasks")
        async with _pool(args) as pool:

            async def poll() -> list[_Task]:
                async with pool.connection() as conn:
                    cur = await conn.execute(API_CLAIM, [args["flows"], worker_id, args["batch"]])
                    rows = list(await cur.fetchall())
                if not rows:
                    async for _ in listener.notifies(timeout=0.05, stop_after=1):
                        pass
                return rows

            async def complete(conn: _Conn, task: _Task) -> None:
                output = jsonb(core_output(task[5], task[1], task[3]))
                await conn.execute(API_COMPLETE, [task[0], task[1], task[2], output, task[4]])

            async def warm(conn: _Conn) -> None:
                cur = await conn.execute(API_CLAIM, [[SLUG], worker_id, 1])
                for task in await cur.fetchall():
                    await conn.execute(API_COMPLETE, [*task[:3], jsonb(None), task[4]])

            return await _loop(member, args, pool, poll, complete, warm)
    finally:
        await listener.close()


def _pool(args: dict[str, Any]) -> AsyncConnectionPool[Any]:
    size = args["connections"]
    return AsyncConnectionPool(
        args["url"],
        min_size=size,
        max_size=size,
        kwargs={"autocommit": True, "prepare_threshold": None},
        open=False,
    )


async def _loop(
    member: Member,
    args: dict[str, Any],
    pool: AsyncConnectionPool[Any],
    poll: Callable[[], Awaitable[list[_Task]]],
    complete: Callable[[_Conn, _Task], Awaitable[None]],
    warm: Callable[[_Conn], Awaitable[None]],
) -> dict[str, Any]:
    """Poll a batch, run all its tasks (``concurrency`` at a time), repeat until done.

    First, with ``args["warmup"]``, ``warm`` works warm-up tasks on every connection.
    """
    await pool.wait()
    if args.get("warmup"):
        await warm_pool(pool, args["warmup"], warm)
    expected, slots = args["expected"], asyncio.Semaphore(args["concurrency"])
    ended: list[float] = []
    stats = {"polls": 0, "empty_polls": 0, "tasks": 0}

    async def run(task: _Task) -> None:
        async with slots, pool.connection() as conn:
            await complete(conn, task)
        stats["tasks"] += 1
        if member.add(1) >= expected and not ended:
            ended.append(time.monotonic())

    member.ready()
    cpu = process_cpu()
    while member.count < expected:
        tasks = await poll()
        stats["polls"] += 1
        stats["empty_polls"] += not tasks
        await asyncio.gather(*(run(task) for task in tasks))
    return {"ended": ended[0] if ended else None, "cpu_s": process_cpu() - cpu, **stats}
