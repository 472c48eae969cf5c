"""A Worker's claims and reports each keep one connection of its pool (ConnectionLane), and
give every connection back when it stops."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from pgflow import AsyncClient, Flow, Worker
from pgflow.db.connection import ConnectionLane, open_async_pool
from tests.integration.runtime import Deploy

lanes_flow = Flow("lanes_flow")


@lanes_flow.step()
async def first(input: dict[str, int]) -> int:
    return input["n"]


@lanes_flow.step(depends_on=[first])
async def second(first: int) -> int:
    return first + 1


async def test_claims_and_reports_each_run_on_one_server_process(
    deploy: Deploy, aclient: AsyncClient, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: dict[int, set[int]] = {}  # lane -> backend pids its calls ran on
    lend = ConnectionLane.connection

    @asynccontextmanager
    async def recording(self: ConnectionLane) -> AsyncIterator[Any]:
        async with lend(self) as conn:
            seen.setdefault(id(self), set()).add(conn.info.backend_pid)
            yield conn

    monkeypatch.setattr(ConnectionLane, "connection", recording)
    deploy(lanes_flow)
    runs = [await aclient.start(lanes_flow, {"n": i}) for i in range(30)]
    pool = await open_async_pool(db_url, min_size=4, max_size=8)
    try:
        worker = Worker([lanes_flow], pool=pool, poll_interval=0.05, batch_size=4)
        await asyncio.wait_for(worker.run_async(until_idle=True), 30)
        stats = pool.get_stats()
        assert stats["pool_available"] == stats["pool_size"]  # nothing kept after stopping
    finally:
        await pool.close()
    for run in runs:
        assert (await aclient.get_run(run.run_id)).status == "completed"
    assert len(seen) == 2  # a lane for claims, one for reports
    assert all(len(pids) == 1 for pids in seen.values()), seen
