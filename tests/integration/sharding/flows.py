"""The flows the sharding tests run: a chain of three steps and a map with a total.

Every handler records its execution in ``faults.executions`` of the shard it runs on (its
``ctx.connection()`` is that shard's pool), pauses ``PAUSE`` seconds, and returns
``{"v": value, "attempt": n}``, so :func:`tests.faults.audit.check_invariants` can check
each shard after a load: every task completed once, by the attempt holding its lease.
"""

from __future__ import annotations

import asyncio
from typing import Any

from pgflow import Context, Flow
from tests.faults.flows import RECORD

PAUSE = {"seconds": 0.0}
OPTIONS: dict[str, Any] = {"max_attempts": 25, "base_delay": 0, "timeout": 3}


async def record(ctx: Context) -> None:
    async with ctx.connection() as conn:
        row = (ctx.run_id, ctx.step_slug, ctx.task_index, ctx.attempt, 0)
        await conn.execute(RECORD, row)
    await asyncio.sleep(PAUSE["seconds"])


def out(value: int, ctx: Context) -> dict[str, int]:
    return {"v": value, "attempt": ctx.attempt}


chain = Flow("shard_chain", **OPTIONS)


@chain.step()
async def first(input: dict[str, int], ctx: Context) -> dict[str, int]:
    await record(ctx)
    return out(input["n"] + 1, ctx)


@chain.step(depends_on=[first])
async def second(first: dict[str, int], ctx: Context) -> dict[str, int]:
    await record(ctx)
    return out(first["v"] * 2, ctx)


@chain.step(depends_on=[second])
async def third(second: dict[str, int], ctx: Context) -> dict[str, int]:
    await record(ctx)
    return out(second["v"] + 3, ctx)


fanout = Flow("shard_map", input=list[int], **OPTIONS)


@fanout.map()
async def square(item: int, ctx: Context) -> dict[str, int]:
    await record(ctx)
    return out(item * item, ctx)


@fanout.step(depends_on=[square])
async def total(square: list[dict[str, int]], ctx: Context) -> dict[str, int]:
    await record(ctx)
    return out(sum(s["v"] for s in square), ctx)


def expected_output(flow_slug: str, payload: Any) -> dict[str, int]:
    """A run's output without the attempt numbers (as ``strip_attempts`` leaves it)."""
    if flow_slug == chain.slug:
        return {"third": (payload["n"] + 1) * 2 + 3}
    return {"total": sum(x * x for x in payload)}


doomed = Flow("shard_doomed", max_attempts=1)


@doomed.step()
def explode(input: dict[str, int]) -> int:
    raise ValueError(f"boom {input['n']}")


FLOWS = (chain, fanout, doomed)
