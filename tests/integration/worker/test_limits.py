"""Concurrency and rate limits through the public API: Flow/step options, deploy, Workers."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import psycopg
from pydantic import BaseModel

from pgflow import AsyncClient, Flow, Limit
from pgflow.deploy import deploy_flows
from tests.integration.runtime import Deploy, WorkerPool


class Order(BaseModel):
    customer: str
    n: int


class InFlight:
    """Handlers running now, overall and per customer, and the most seen at once."""

    def __init__(self) -> None:
        self.now: dict[str, int] = {}
        self.most: dict[str, int] = {}

    async def hold(self, *scopes: str, seconds: float = 0.05) -> None:
        for scope in scopes:
            self.now[scope] = self.now.get(scope, 0) + 1
            self.most[scope] = max(self.most.get(scope, 0), self.now[scope])
        await asyncio.sleep(seconds)
        for scope in scopes:
            self.now[scope] -= 1


def limited_flow(seen: InFlight) -> Flow:
    flow = Flow("limited_orders", input=Order)

    @flow.step(concurrency=3)
    async def charge(input: Order) -> int:
        await seen.hold("charge")
        return input.n

    @flow.step(concurrency=Limit(1, key="customer"))
    async def ship(input: Order) -> str:
        await seen.hold("ship", f"ship:{input.customer}")
        return input.customer

    return flow


async def test_workers_together_never_run_more_than_the_limit(
    deploy: Deploy, workers: WorkerPool, aclient: AsyncClient
) -> None:
    seen = InFlight()
    flow = limited_flow(seen)
    deploy(flow)
    for _ in range(4):  # 4 workers x 8 slots each: far more room than the limits allow
        workers.start(flow, concurrency=8, poll_interval=0.05)
    runs = [await aclient.start(flow, {"customer": f"c{n % 2}", "n": n}) for n in range(16)]
    for run in runs:
        done = await aclient.wait(run.run_id, timeout=30)
        assert done.status == "completed"
    assert seen.most["charge"] == 3
    assert seen.most["ship:c0"] == 1 and seen.most["ship:c1"] == 1
    assert seen.most["ship"] == 2


async def test_a_rate_limited_step_starts_no_faster_than_its_rate(
    deploy: Deploy, workers: WorkerPool, aclient: AsyncClient
) -> None:
    starts: list[float] = []
    flow = Flow("rated_calls")

    @flow.step(rate_limit="5/s")
    def call(input: Any) -> int:
        starts.append(time.monotonic())
        return 1

    deploy(flow)
    workers.start(flow, concurrency=10, poll_interval=0.05)
    workers.start(flow, concurrency=10, poll_interval=0.05)
    runs = [await aclient.start(flow, {}) for _ in range(15)]
    for run in runs:
        assert (await aclient.wait(run.run_id, timeout=30)).status == "completed"
    # a full bucket of 5 at once, then 5 per second: 15 starts take at least 2 s
    span = max(starts) - min(starts)
    assert len(starts) == 15
    assert span >= 1.8, span


def test_deploy_stores_limits_reports_changes_and_clears_removed_ones(db_url: str) -> None:
    first = Flow("tuned", concurrency=10)
    first.step("a", lambda input: 1, rate_limit="100/min")
    with psycopg.connect(db_url, autocommit=True) as conn:
        [result] = deploy_flows(conn, [first])
        assert result.action == "created"
        second = Flow("tuned", concurrency=5)
        second.step("a", lambda input: 1)
        [result] = deploy_flows(conn, [second])
        assert result.action == "options updated"
        assert result.detail == (
            "concurrency limit (flow) 10 -> 5; rate limit a 100 per 60 s -> none"
        )
        rows = conn.execute("select step_slug, kind, max_count from pgflow.limits").fetchall()
        assert rows == [("", "concurrency", 5)]
        third = Flow("tuned")
        third.step("a", lambda input: 1)
        [result] = deploy_flows(conn, [third])
        assert result.detail == "concurrency limit (flow) 5 -> none"
        assert conn.execute("select count(*) from pgflow.limits").fetchone() == (0,)
