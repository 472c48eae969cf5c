"""Graceful shutdown, releasing unfinished tasks, and surviving killed connections."""

from __future__ import annotations

import asyncio
import logging

import psycopg
import pytest

from pgflow import AsyncClient, Context, Flow, Worker
from tests.integration.runtime import Deploy, WorkerPool, tasks_of

lingering = Flow("lingering")
events: dict[str, asyncio.Event] = {}


@lingering.step()
async def linger(input: dict[str, float], ctx: Context) -> str:
    events["started"].set()
    await asyncio.sleep(input["seconds"])
    return "done, told to stop" if ctx.shutdown.is_set() else "done"


@pytest.fixture(autouse=True)
def fresh_events() -> None:
    events["started"] = asyncio.Event()  # bound to this test's event loop on first use


async def _wait_started() -> None:
    await asyncio.wait_for(events["started"].wait(), 10)
    events["started"].clear()


async def test_stop_lets_a_running_task_finish_and_report(
    deploy: Deploy, workers: WorkerPool, aclient: AsyncClient
) -> None:
    deploy(lingering)
    worker = workers.start(lingering, shutdown_grace=10)
    run = await aclient.start(lingering, {"seconds": 0.3})
    await _wait_started()
    await workers.stop(worker)  # returns only after the task finished and was stored
    assert (await aclient.get_run(run.run_id)).output == {"linger": "done, told to stop"}


async def test_tasks_still_running_after_the_grace_period_are_released(
    deploy: Deploy, workers: WorkerPool, aclient: AsyncClient, db_url: str
) -> None:
    deploy(lingering)
    worker = workers.start(lingering, shutdown_grace=0.2)
    run = await aclient.start(lingering, {"seconds": 60})
    await _wait_started()
    await workers.stop(worker)
    with psycopg.connect(db_url) as conn:
        (task,) = tasks_of(conn, run.run_id)
    assert task["status"] == "queued"  # back in the queue for another worker, at once
    # the release uses up no attempt, but its number is never handed out again
    assert (task["attempts_count"], task["releases"]) == (1, 1)
    assert task["worker_id"] is None
    workers.start(lingering)  # another worker picks it up
    await _wait_started()


async def test_stop_before_start_returns_at_once(deploy: Deploy, db_url: str) -> None:
    deploy(lingering)
    worker = Worker([lingering], db_url, retry_base_delay=0)
    worker.stop()
    await asyncio.wait_for(worker.run_async(), 10)


def _kill_worker_connections(db_url: str) -> int:
    with psycopg.connect(db_url, autocommit=True, application_name="killer") as conn:
        rows = conn.execute(
            "select pg_terminate_backend(pid) from pg_stat_activity "
            "where datname = current_database() and application_name = 'pgflow_worker' "
            "and pid <> pg_backend_pid()"
        ).fetchall()
    return len(rows)


async def test_the_worker_recovers_after_its_connections_are_killed(
    deploy: Deploy,
    workers: WorkerPool,
    aclient: AsyncClient,
    db_url: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="pgflow.worker")
    deploy(lingering)
    workers.start(lingering, poll_interval=0.2)
    first = await aclient.start(lingering, {"seconds": 0})
    await aclient.wait(first.run_id, timeout=10)
    assert _kill_worker_connections(db_url) >= 2  # the pool and the LISTEN connection
    for _ in range(3):  # every run after the kill completes
        run = await aclient.start(lingering, {"seconds": 0})
        assert (await aclient.wait(run.run_id, timeout=15)).status == "completed"
    messages = [r.getMessage() for r in caplog.records if r.name == "pgflow.worker"]
    assert any(m.startswith("database unavailable") for m in messages)
    assert any(m.startswith("database available again") for m in messages)
    assert sum(m.startswith("database unavailable") for m in messages) <= 2  # no flood


async def test_a_run_started_after_a_kill_is_claimed_via_listen_again(
    deploy: Deploy, workers: WorkerPool, aclient: AsyncClient, db_url: str
) -> None:
    deploy(lingering)
    workers.start(lingering, poll_interval=60)  # only notifications can wake it in time
    first = await aclient.start(lingering, {"seconds": 0})
    await aclient.wait(first.run_id, timeout=10)
    _kill_worker_connections(db_url)
    await asyncio.sleep(0.3)  # let the listener notice and reconnect (not a speed assertion)
    run = await aclient.start(lingering, {"seconds": 0})
    assert (await aclient.wait(run.run_id, timeout=15)).status == "completed"
