"""Workers and clients through PgBouncer in transaction pooling mode (docs/scaling.md).

PgBouncer 1.18 (Debian's) hands each transaction whichever server connection is free and
does not support protocol-level prepared statements, so pgflow keeps no session state:
no prepared statements, no SET, no session locks, and LISTEN only over a direct
``listen_url`` (else a poll, announced at start-up).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import AsyncIterator
from typing import Any

import psycopg
import pytest
from pytest_asyncio import fixture as async_fixture

from pgflow import AsyncClient, Client, ConfigurationError, Flow, RunTimeoutError, Worker
from pgflow.db.connection import abehind_pooler, aconnect, behind_pooler, connect
from pgflow.testing.pgbouncer import start_pgbouncer
from tests.integration.runtime import WORKER_DEFAULTS, Deploy

relay = Flow("bouncer_relay", max_attempts=1)


@relay.step()
async def first(input: dict[str, int]) -> int:
    return input["n"] + 1


@relay.step(depends_on=[first])
def second(first: int) -> int:
    return first * 2


@relay.step(depends_on=[second])
async def third(second: int) -> int:
    return second + 3


@async_fixture
async def start_worker(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Any]:
    """Start in-process workers; each is stopped at teardown."""
    monkeypatch.delenv("PGFLOW_LISTEN_URL", raising=False)
    running: list[tuple[Worker, asyncio.Task[None]]] = []

    def start(url: str, **options: Any) -> Worker:
        worker = Worker([relay], url, **{**WORKER_DEFAULTS, **options})
        running.append((worker, asyncio.create_task(worker.run_async())))
        return worker

    yield start
    for worker, _ in running:
        worker.stop()
    for _, task in running:
        await asyncio.wait_for(task, 15)


def listeners(db_url: str) -> list[str]:
    """Server sessions whose last statement was a worker's LISTEN."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        rows = conn.execute(
            "select query from pg_stat_activity where datname = current_database() "
            "and query ilike 'listen pgflow%%'"
        ).fetchall()
    return [row[0] for row in rows]


def test_prepared_statements_break_transaction_pooling_and_pgflow_prepares_none(
    db_url: str,
) -> None:
    with start_pgbouncer(db_url, pool_size=1) as one:
        url = one.url_for(db_url)
        # psycopg preparing at once: both clients prepare _pg3_0 on the one server connection
        with (
            psycopg.connect(url, autocommit=True, prepare_threshold=0) as a,
            psycopg.connect(url, autocommit=True, prepare_threshold=0) as b,
        ):
            a.execute("select 1 + %s", [1])
            with pytest.raises(psycopg.errors.DuplicatePreparedStatement):
                b.execute("select 2 + %s", [2])
        # pgflow's connections, past psycopg's default threshold of 5 executions
        with connect(url) as a, connect(url) as b:
            for i in range(12):
                assert a.execute("select %s::int + 1", [i]).fetchone() == (i + 1,)
                assert b.execute("select %s::int + 2", [i]).fetchone() == (i + 2,)


def test_a_pooler_is_told_apart_from_a_direct_connection(db_url: str, pooled_url: str) -> None:
    with connect(db_url) as direct, connect(pooled_url) as pooled:
        assert behind_pooler(direct) is False
        assert behind_pooler(pooled) is True


async def test_the_async_check_agrees(db_url: str, pooled_url: str) -> None:
    async with await aconnect(db_url) as direct, await aconnect(pooled_url) as pooled:
        assert await abehind_pooler(direct) is False
        assert await abehind_pooler(pooled) is True


async def test_a_worker_through_pgbouncer_polls_and_says_so(
    deploy: Deploy,
    db_url: str,
    pooled_url: str,
    start_worker: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="pgflow.worker")
    deploy(relay)
    start_worker(pooled_url)
    async with AsyncClient(pooled_url) as client:
        runs = [await client.start(relay, {"n": n}) for n in range(5)]
        done = [await client.wait(run.run_id, timeout=30) for run in runs]
    assert [run.output for run in done] == [{"third": (n + 1) * 2 + 3} for n in range(5)]
    messages = [r.getMessage() for r in caplog.records]
    started = next(m for m in messages if "started: flows=bouncer_relay" in m)
    assert "(through a pooler) wake-ups=poll" in started
    polling = [r for r in caplog.records if "cannot LISTEN" in r.getMessage()]
    assert len(polling) == 1 and polling[0].levelno == logging.WARNING
    assert "polls for tasks every 0.25s" in polling[0].getMessage()
    assert "--listen-url" in polling[0].getMessage()
    assert listeners(db_url) == []  # no LISTEN went through PgBouncer


async def test_with_a_listen_url_the_worker_listens_directly(
    deploy: Deploy,
    db_url: str,
    pooled_url: str,
    start_worker: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="pgflow.worker")
    deploy(relay)
    start_worker(pooled_url, listen_url=db_url)
    with Client(pooled_url, listen_url=db_url) as client:  # in a thread: the loop runs the worker
        run = await asyncio.to_thread(client.start, relay, {"n": 1})
        done = await asyncio.to_thread(client.wait, run.run_id, 30)
    assert done.output == {"third": 7}
    messages = [r.getMessage() for r in caplog.records]
    started = next(m for m in messages if "started: flows=bouncer_relay" in m)
    assert "(through a pooler) wake-ups=LISTEN on postgresql://" in started
    assert not any("cannot LISTEN" in m for m in messages)
    assert listeners(db_url) == ["listen pgflow_cancelled;"]  # the worker's, direct


async def test_the_environment_supplies_the_listen_url(
    deploy: Deploy,
    db_url: str,
    pooled_url: str,
    start_worker: Any,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="pgflow.worker")
    deploy(relay)
    monkeypatch.setenv("PGFLOW_LISTEN_URL", db_url)
    start_worker(pooled_url)
    async with AsyncClient(pooled_url) as client:
        run = await client.start(relay, {"n": 2})
        assert (await client.wait(run.run_id, timeout=30)).output == {"third": 9}
    assert any("wake-ups=LISTEN on postgresql://" in r.getMessage() for r in caplog.records)


def test_waiting_through_pgbouncer_without_listen_url_polls_and_times_out(
    deploy: Deploy, pooled_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PGFLOW_LISTEN_URL", raising=False)
    deploy(relay)
    seen: list[str] = []
    with Client(pooled_url) as client:
        run = client.start(relay, {"n": 3})
        with pytest.raises(RunTimeoutError, match=r"did not finish within 0.6 s"):
            client.wait(run.run_id, timeout=0.6)
        with pytest.raises(RunTimeoutError):
            for current in client.watch(run.run_id, timeout=0.6):
                seen.append(current.status)
    assert seen == ["started"]  # re-reads of the unchanged run are not yielded again


async def test_watch_through_pgbouncer_yields_each_change_once(
    deploy: Deploy, pooled_url: str, start_worker: Any
) -> None:
    deploy(relay)
    async with AsyncClient(pooled_url) as client:
        run = await client.start(relay, {"n": 4})
        start_worker(pooled_url)
        seen = [r async for r in client.watch(run.run_id, timeout=30)]
    assert seen[-1].status == "completed"
    assert all(a != b for a, b in itertools.pairwise(seen))  # a re-read is not a change


def test_a_bad_listen_url_is_refused_up_front(deploy: Deploy, pooled_url: str) -> None:
    deploy(relay)
    worker = Worker([relay], pooled_url, listen_url="not a url password=x =", **WORKER_DEFAULTS)
    with pytest.raises(ConfigurationError, match="invalid database URL") as caught:
        worker.run(until_idle=True)
    assert "password=x" not in str(caught.value)


async def test_a_listen_url_through_the_pooler_too_is_used_with_a_warning(
    deploy: Deploy, pooled_url: str, start_worker: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="pgflow.worker")
    deploy(relay)
    start_worker(pooled_url, listen_url=pooled_url)  # right for session pooling only
    async with AsyncClient(pooled_url) as client:
        run = await client.start(relay, {"n": 5})
        assert (await client.wait(run.run_id, timeout=30)).output == {"third": 15}
    warnings = [r for r in caplog.records if "LISTEN connection to" in r.getMessage()]
    assert len(warnings) == 1 and warnings[0].levelno == logging.WARNING
    assert "only in session pooling mode" in warnings[0].getMessage()
