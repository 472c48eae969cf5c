"""ConnectionLane against a real Postgres: one server process serves a lane's calls, and
every way a call can go wrong gives the connection back to the pool (never reused broken)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool

from pgflow.db.connection import ConnectionLane, open_async_pool

PID = "select pg_backend_pid()"


@pytest.fixture
async def pool(db_url: str) -> AsyncIterator[AsyncConnectionPool]:
    pool = await open_async_pool(db_url, min_size=3, max_size=4)
    try:
        yield pool
    finally:
        await pool.close()


async def _pid(conn: psycopg.AsyncConnection[Any]) -> int:
    row = await (await conn.execute(PID)).fetchone()
    assert row is not None
    return int(row[0])


async def _lane_pid(lane: ConnectionLane) -> int:
    async with lane.connection() as conn:
        return await _pid(conn)


def _idle(pool: AsyncConnectionPool) -> int:
    return int(pool.get_stats()["pool_available"])


async def test_the_pool_alone_goes_round_its_connections(pool: AsyncConnectionPool) -> None:
    """Why lanes exist: borrowing per call visits every idle connection in turn."""
    pids = []
    for _ in range(6):
        async with pool.connection() as conn:
            pids.append(await _pid(conn))
    assert len(set(pids)) == 3


async def test_a_lane_runs_every_call_on_one_server_process(pool: AsyncConnectionPool) -> None:
    lane = ConnectionLane(pool)
    pids = {await _lane_pid(lane) for _ in range(6)}
    assert len(pids) == 1
    assert _idle(pool) == 2  # the lane keeps one
    await lane.close()
    assert _idle(pool) == 3
    assert len({await _lane_pid(lane) for _ in range(3)}) == 3  # closed: one per call again
    assert _idle(pool) == 3


async def test_a_second_caller_meanwhile_gets_another_connection(
    pool: AsyncConnectionPool,
) -> None:
    lane = ConnectionLane(pool)
    kept = await _lane_pid(lane)
    async with lane.connection() as first:
        async with lane.connection() as second:
            assert await _pid(first) == kept
            other = await _pid(second)
            assert other != kept
        assert _idle(pool) == 1  # the second came back first: the lane keeps it
    assert _idle(pool) == 2  # and the first goes back to the pool
    assert await _lane_pid(lane) == other
    await lane.close()


async def test_an_error_in_the_block_gives_the_connection_back(
    pool: AsyncConnectionPool,
) -> None:
    lane = ConnectionLane(pool)
    kept = await _lane_pid(lane)
    with pytest.raises(psycopg.errors.DivisionByZero):
        async with lane.connection() as conn:
            await conn.execute("select 1 / 0")
    assert _idle(pool) == 3  # rolled back and returned, not kept
    assert await _lane_pid(lane) != kept  # the pool lends the next one in line
    await lane.close()


async def _lane_with_dropped_connection(
    db_url: str, pool: AsyncConnectionPool
) -> tuple[ConnectionLane, int]:
    """A lane whose kept connection the server has just terminated; and that process id."""
    lane = ConnectionLane(pool)
    kept = await _lane_pid(lane)
    with psycopg.connect(db_url, autocommit=True) as admin:
        admin.execute("select pg_terminate_backend(%s)", [kept])
    return lane, kept


async def test_a_connection_the_server_dropped_fails_once_then_is_replaced(
    pool: AsyncConnectionPool, db_url: str
) -> None:
    lane, kept = await _lane_with_dropped_connection(db_url, pool)
    with pytest.raises(psycopg.OperationalError):
        await _lane_pid(lane)
    await pool.check()
    pids = {await _lane_pid(lane) for _ in range(3)}
    assert len(pids) == 1 and kept not in pids
    await lane.close()


async def test_release_hands_a_dropped_connection_to_the_pool_check(
    pool: AsyncConnectionPool, db_url: str
) -> None:
    """What a worker does after a failure: the check also covers what lanes kept."""
    lane, kept = await _lane_with_dropped_connection(db_url, pool)
    await lane.release()
    await pool.check()
    assert await _lane_pid(lane) != kept  # no failed call first
    await lane.close()


async def test_a_call_cancelled_mid_query_never_returns_its_connection_to_use(
    pool: AsyncConnectionPool,
) -> None:
    lane = ConnectionLane(pool)
    kept = await _lane_pid(lane)

    async def slow() -> None:
        async with lane.connection() as conn:
            await conn.execute("select pg_sleep(30)")

    task = asyncio.create_task(slow())
    await asyncio.sleep(0.3)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    after = await _lane_pid(lane)  # a working connection, not the one left mid-query
    assert after != kept
    assert await _lane_pid(lane) == after
    await lane.close()


async def test_a_kept_connection_goes_back_after_the_hold_time(
    pool: AsyncConnectionPool, monkeypatch: pytest.MonkeyPatch
) -> None:
    lane = ConnectionLane(pool)
    kept = await _lane_pid(lane)
    monkeypatch.setattr(ConnectionLane, "HOLD_SECONDS", 0.0)
    await asyncio.sleep(0.01)
    assert await _lane_pid(lane) != kept  # given back, the next in line lent instead
    assert _idle(pool) == 2
    await lane.close()
