"""Warming each connection a drain will use, before the drain's clock starts.

A server process compiles the PL/pgSQL functions it calls and plans their statements on
first use (``python -m benchmarks.cold_backend``: a fresh connection's first claim and
report cost about 30 ms more than the next ones). Production workers pay that once per
connection; a two-second drain would pay it inside its clock, once for every connection
each layer opens (a Worker's pool uses about three, the Edge-shaped loops four), so more
workers would look slower than they are. So before reporting ready, every member of every
layer works a few tasks of ``bench_warmup`` (``a`` → ``b``) with its own protocol on each
connection it will use, and the coordinator takes its "before" figures once all are ready
(:func:`benchmarks.workloads.measure_drain`). Warm-up tasks are never counted.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import psycopg
from psycopg_pool import AsyncConnectionPool

__all__ = ["ROUNDS", "SLUG", "warm_pool"]

SLUG = "bench_warmup"
ROUNDS = 2
"""Rounds per connection: a root task, then (usually) a dependent one."""


async def warm_pool(
    pool: AsyncConnectionPool[Any],
    connections: int,
    one_round: Callable[[psycopg.AsyncConnection[Any]], Awaitable[None]],
) -> None:
    """Hold ``connections`` of the pool at once (so each is its own server process) and run
    :data:`ROUNDS` rounds of ``one_round`` on each; they stay in the pool, warm."""
    held = [await pool.getconn() for _ in range(connections)]
    try:
        for conn in held:
            for _ in range(ROUNDS):
                await one_round(conn)
    finally:
        for conn in held:
            await pool.putconn(conn)
