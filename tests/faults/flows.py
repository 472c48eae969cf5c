"""The flows the fault-injection suite runs in real worker processes.

Every handler first records its execution (run, step, task index, attempt, process id) in
``faults.executions`` through a connection of its own, then returns ``{"v": value,
"attempt": n}``. So after a load the tests can tell apart what ran (at least once: a killed
worker's attempt, a retried one) from what was accepted (exactly once: the task's stored
output names the attempt whose completion Postgres accepted).

``FAULTS_JITTER`` (seconds, default 0) adds a random pause after the record, so that a
worker killed at random is often killed in the middle of a handler.
"""

from __future__ import annotations

import asyncio
import os
import random
from typing import Any

import psycopg

from pgflow import Context, Flow

RECORD = (
    "insert into faults.executions (run_id, step_slug, task_index, attempt, pid) "
    "values (%s, %s, %s, %s, %s)"
)
OPTIONS: dict[str, Any] = {"max_attempts": 25, "base_delay": 0, "timeout": 2}


def _row(ctx: Context) -> tuple[Any, ...]:
    return (ctx.run_id, ctx.step_slug, ctx.task_index, ctx.attempt, os.getpid())


def _jitter() -> float:
    return random.random() * float(os.environ.get("FAULTS_JITTER", "0"))


async def record(ctx: Context) -> None:
    """Log this execution through the worker's pool, then pause a little."""
    async with ctx.connection() as conn:
        await conn.execute(RECORD, _row(ctx))
    await asyncio.sleep(_jitter())


def record_sync(ctx: Context) -> None:
    """Log this execution through a connection of the handler's own (sync handlers)."""
    with psycopg.connect(ctx.env["PGFLOW_DATABASE_URL"], autocommit=True) as conn:
        conn.execute(RECORD, _row(ctx))


def out(value: int, ctx: Context) -> dict[str, int]:
    return {"v": value, "attempt": ctx.attempt}


chain = Flow("fault_chain", **OPTIONS)


@chain.step()
async def first(input: dict[str, int], ctx: Context) -> dict[str, int]:
    await record(ctx)
    return out(input["n"] + 1, ctx)


@chain.step(depends_on=[first])
def second(first: dict[str, int], ctx: Context) -> dict[str, int]:
    record_sync(ctx)
    return out(first["v"] * 2, ctx)


@chain.step(depends_on=[second])
async def third(second: dict[str, int], ctx: Context) -> dict[str, int]:
    await record(ctx)
    return out(second["v"] + 3, ctx)


diamond = Flow("fault_diamond", **OPTIONS)


@diamond.step()
async def top(input: dict[str, int], ctx: Context) -> dict[str, int]:
    await record(ctx)
    return out(input["n"], ctx)


@diamond.step(depends_on=[top])
async def left(top: dict[str, int], ctx: Context) -> dict[str, int]:
    await record(ctx)
    return out(top["v"] + 1, ctx)


@diamond.step(depends_on=[top])
async def right(top: dict[str, int], ctx: Context) -> dict[str, int]:
    await record(ctx)
    return out(top["v"] * 3, ctx)


@diamond.step(depends_on=[left, right])
async def bottom(left: dict[str, int], right: dict[str, int], ctx: Context) -> dict[str, int]:
    await record(ctx)
    return out(left["v"] + right["v"], ctx)


fanout = Flow("fault_map", input=list[int], **OPTIONS)


@fanout.map()
async def square(item: int, ctx: Context) -> dict[str, int]:
    await record(ctx)
    return out(item * item, ctx)


@fanout.step(depends_on=[square])
async def total(square: list[dict[str, int]], ctx: Context) -> dict[str, int]:
    await record(ctx)
    return out(sum(s["v"] for s in square), ctx)


FLOWS = (chain, diamond, fanout)


def expected_output(flow_slug: str, payload: Any) -> dict[str, int]:
    """The run output of a run of these flows, without the attempt numbers."""
    if flow_slug == chain.slug:
        return {"third": (payload["n"] + 1) * 2 + 3}
    if flow_slug == diamond.slug:
        return {"bottom": payload["n"] + 1 + payload["n"] * 3}
    return {"total": sum(x * x for x in payload)}
