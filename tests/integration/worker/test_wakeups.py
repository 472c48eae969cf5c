"""Workers and clients register as listeners: they are notified, and only they are.

Transactions notify only registered listeners (docs/workers.md, "How a worker picks up
work"). A worker that LISTENs registers under its worker id while it runs; a client's
wait registers its run while it waits. The chains below run with a one-minute poll, so a
lost wake-up would show as a timeout, not as a slow pass.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from pgflow import AsyncClient, Client, Context, Flow
from pgflow.worker import registration as registration_module
from pgflow.worker.registration import TaskRegistration
from pgflow.worker.store import WorkerStore
from tests.integration.runtime import Deploy, WorkerPool

chain = Flow("wake_chain")


@chain.step()
async def s1(input: int) -> int:
    return input + 1


@chain.step(depends_on=[s1])
def s2(s1: int) -> int:  # a sync handler: its report is stored by the reporter later
    return s1 + 1


@chain.step(depends_on=[s2])
async def s3(s2: int, ctx: Context) -> int:
    return s2 + 1


@chain.step(depends_on=[s3])
async def s4(s3: int) -> int:
    return s3 + 1


NO_POLL = {"poll_interval": 60.0}


def rows(db_url: str, sql: str, *params: Any) -> list[dict[str, Any]]:
    with psycopg.connect(db_url, autocommit=True, row_factory=dict_row) as conn:
        cur = conn.execute(sql, params or None)
        return cur.fetchall() if cur.description else []


async def eventually(check: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not await asyncio.to_thread(check):
        assert time.monotonic() < deadline, "the condition never held"
        await asyncio.sleep(0.02)


async def test_a_busy_worker_is_never_left_without_a_wake_up(
    deploy: Deploy, workers: WorkerPool, aclient: AsyncClient
) -> None:
    # concurrency 1: every claim of one task is full (the worker stops waiting), the next
    # one is short (it waits again and owes a barrier): the transition at every step
    deploy(chain)
    workers.start(chain, concurrency=1, **NO_POLL)
    workers.start(chain, concurrency=1, **NO_POLL)
    began = time.monotonic()
    runs = [await aclient.start(chain, i) for i in range(6)]
    for i, run in enumerate(runs):
        done = await aclient.wait(run.run_id, timeout=20)
        assert done.output == {"s4": i + 4}
    assert time.monotonic() - began < 20  # no step waited for the one-minute poll


async def test_the_barrier_finds_a_task_whose_notification_was_skipped(
    db_url: str, deploy: Deploy, workers: WorkerPool, aclient: AsyncClient
) -> None:
    deploy(chain)
    worker_id = uuid.uuid4()
    # the worker's registration from a previous life: its last claim was full
    rows(db_url, "select pgflow.listen_tasks(%s, array['wake_chain'])", worker_id)
    rows(db_url, "update pgflow.listeners set waiting = false")
    with psycopg.connect(db_url) as holder:
        # a run started before the worker waits: its transaction looked, found the worker
        # not waiting, skipped the notification, and has not committed yet
        run_id = holder.execute("select run_id from pgflow.start_flow('wake_chain', '1')")
        run_id = run_id.fetchone()[0]  # type: ignore[index]
        workers.start(chain, worker_id=worker_id, **NO_POLL)
        barrier = (
            "select count(*) as n from pg_locks l join pg_stat_activity a using (pid)"
            " where l.locktype = 'advisory' and not l.granted"
            " and a.application_name = 'pgflow_worker'"
        )
        await eventually(lambda: rows(db_url, barrier)[0]["n"] == 1)  # the worker's barrier
        holder.commit()
    done = await aclient.wait(run_id, timeout=10)  # the claim after the barrier found it
    assert done.output == {"s4": 5}


async def test_a_worker_registers_while_it_runs(
    db_url: str, deploy: Deploy, workers: WorkerPool, aclient: AsyncClient
) -> None:
    deploy(chain)
    worker = workers.start(chain, **NO_POLL)
    query = "select flow_slug, waiting from pgflow.listeners where listener_id = %s"
    await eventually(lambda: rows(db_url, query, worker.worker_id))
    assert rows(db_url, query, worker.worker_id) == [{"flow_slug": "wake_chain", "waiting": True}]
    done = await aclient.wait((await aclient.start(chain, 1)).run_id, timeout=10)
    assert done.status == "completed"
    await workers.stop(worker)
    assert rows(db_url, query, worker.worker_id) == []  # worker_stopped removed it


async def test_a_wait_registers_its_run_until_it_returns(
    db_url: str, deploy: Deploy, workers: WorkerPool, aclient: AsyncClient
) -> None:
    deploy(chain)
    run = await aclient.start(chain, 1)
    query = "select count(*) as n from pgflow.listeners where run_id = %s"
    waiting = asyncio.create_task(aclient.wait(run.run_id, timeout=20))
    await eventually(lambda: rows(db_url, query, run.run_id)[0]["n"] == 1)
    workers.start(chain, **NO_POLL)  # started after the wait read the run: only events
    assert (await waiting).output == {"s4": 5}
    assert rows(db_url, query, run.run_id) == [{"n": 0}]


async def test_a_role_that_cannot_register_waits_by_reading_again(
    db_url: str,
    deploy: Deploy,
    workers: WorkerPool,
    caplog: pytest.LogCaptureFixture,
) -> None:
    deploy(chain)
    rows(db_url, "revoke execute on function pgflow.watch_run(uuid, uuid, int) from pgflow_reader")
    run_id = rows(db_url, "select run_id from pgflow.start_flow('wake_chain', '1')")[0]["run_id"]
    workers.start(chain, **NO_POLL)

    def wait_as_reader() -> Any:
        with psycopg.connect(db_url, autocommit=True) as conn:
            conn.execute("set role pgflow_reader")
            with Client(connection=conn) as client:
                return client.wait(run_id, timeout=20)

    with caplog.at_level(logging.WARNING, logger="pgflow.client"):
        done = await asyncio.to_thread(wait_as_reader)
    assert done.output == {"s4": 5}
    assert "may not register run listeners" in caplog.text


async def test_a_lapsed_registration_is_made_again_and_owes_a_barrier(
    db_url: str, deploy: Deploy, monkeypatch: pytest.MonkeyPatch
) -> None:
    deploy(chain)
    worker_id = uuid.uuid4()
    owed: list[bool] = []
    async with AsyncConnectionPool(db_url, kwargs={"autocommit": True}) as pool:
        store = WorkerStore(pool, worker_id, ["wake_chain"])
        registration = TaskRegistration(store, 60, lambda: owed.append(True))
        await registration.register()
        assert owed == [True] and registration.active
        query = "select count(*) as n from pgflow.listeners where listener_id = %s"
        assert rows(db_url, query, worker_id) == [{"n": 1}]
        await registration.renewed(time.monotonic())  # renewed in time: nothing owed
        assert owed == [True]
        rows(db_url, "delete from pgflow.listeners")  # it lapsed and was deleted
        later = time.monotonic() + 61
        monkeypatch.setattr(registration_module.time, "monotonic", lambda: later)
        await registration.renewed(later)  # a heartbeat more than a TTL after the last
        assert owed == [True, True]
        assert rows(db_url, query, worker_id) == [{"n": 1}]
        assert await registration.sync() is True
