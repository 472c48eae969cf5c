"""A real Worker, in-process, running flows end to end against Postgres."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid

import psycopg
import pytest
from pydantic import BaseModel

from pgflow import AsyncClient, Context, Flow
from tests.integration.runtime import Deploy, WorkerPool, tasks_of


class Page(BaseModel):
    url: str
    words: int


class Input(BaseModel):
    url: str


diamond = Flow("diamond", input=Input)
threads: dict[str, str] = {}


@diamond.step()
async def fetch(input: Input) -> Page:
    threads["fetch"] = threading.current_thread().name
    return Page(url=input.url, words=len(input.url))


@diamond.step(depends_on=[fetch])
def count(fetch: Page) -> int:
    threads["count"] = threading.current_thread().name
    return fetch.words * 2


@diamond.step(depends_on=[fetch])
async def shout(fetch: Page, ctx: Context) -> str:
    return f"{fetch.url.upper()}@{ctx.attempt}"


@diamond.step(depends_on=[count, shout])
def save(input: Input, count: int, shout: str) -> dict[str, object]:
    return {"url": input.url, "count": count, "shout": shout}


async def test_diamond_runs_sync_and_async_handlers(
    deploy: Deploy, workers: WorkerPool, aclient: AsyncClient
) -> None:
    deploy(diamond)
    workers.start(diamond)
    run = await aclient.start(diamond, Input(url="ab.c"))
    done = await aclient.wait(run.run_id, timeout=10)
    assert done.output == {"save": {"url": "ab.c", "count": 8, "shout": "AB.C@1"}}
    assert done.step("fetch").output == {"url": "ab.c", "words": 4}
    assert threads["fetch"] == threading.main_thread().name  # async: on the event loop
    assert threads["count"].startswith("pgflow")  # sync: in the worker's thread pool


batch = Flow("batch", input=list[int])


@batch.map()
async def square(n: int) -> int:
    return n * n


@batch.step(depends_on=[square])
def total(square: list[int]) -> int:
    return sum(square)


async def test_map_fans_out_and_aggregates_in_element_order(
    deploy: Deploy, workers: WorkerPool, aclient: AsyncClient
) -> None:
    deploy(batch)
    workers.start(batch, concurrency=4, batch_size=3)
    numbers = list(range(40))
    done = await aclient.wait((await aclient.start(batch, numbers)).run_id, timeout=10)
    assert done.step("square").output == [n * n for n in numbers]
    assert done.output == {"total": sum(n * n for n in numbers)}
    empty = await aclient.wait((await aclient.start(batch, [])).run_id, timeout=10)
    assert empty.output == {"total": 0}


ctx_flow = Flow("ctx_flow")
seen: dict[str, object] = {}


@ctx_flow.step()
async def inspect(input: dict[str, int], ctx: Context) -> int:
    async with ctx.connection() as conn:
        row = await (await conn.execute("select 40 + %s", [input["n"]])).fetchone()
    assert row is not None
    seen.update(
        run_id=ctx.run_id,
        flow_input=ctx.flow_input,
        secret=ctx.env.get("API_KEY"),
        extra=getattr(ctx.logger, "extra", None),
        shutdown=ctx.shutdown.is_set(),
    )
    ctx.logger.info("inside the handler")
    return int(row[0])


async def test_context_carries_run_env_logger_and_a_pooled_connection(
    deploy: Deploy, workers: WorkerPool, aclient: AsyncClient
) -> None:
    deploy(ctx_flow)
    workers.start(ctx_flow, env={"API_KEY": "s3cret"})
    run = await aclient.start(ctx_flow, {"n": 2})
    done = await aclient.wait(run.run_id, timeout=10)
    assert done.output == {"inspect": 42}
    assert seen["run_id"] == run.run_id
    assert seen["flow_input"] == {"n": 2}
    assert seen["secret"] == "s3cret"
    assert seen["extra"] == {
        "run_id": str(run.run_id),
        "flow_slug": "ctx_flow",
        "step_slug": "inspect",
        "task_index": 0,
        "attempt": 1,
    }
    assert seen["shutdown"] is False


slow_fast = Flow("slow_fast")
release_slow = asyncio.Event()


@slow_fast.step()
async def maybe_slow(input: dict[str, bool]) -> str:
    if input["slow"]:
        await release_slow.wait()
    return "slow" if input["slow"] else "fast"


async def test_one_slow_task_does_not_hold_up_the_next_claims(
    deploy: Deploy, workers: WorkerPool, aclient: AsyncClient
) -> None:
    release_slow.clear()
    deploy(slow_fast)
    workers.start(slow_fast, concurrency=2, poll_interval=60)
    slow = await aclient.start(slow_fast, {"slow": True})
    fast = [await aclient.start(slow_fast, {"slow": False}) for _ in range(5)]
    for run in fast:  # each one claimed as soon as the other slot frees
        assert (await aclient.wait(run.run_id, timeout=10)).output == {"maybe_slow": "fast"}
    assert (await aclient.get_run(slow.run_id)).status == "started"
    release_slow.set()
    assert (await aclient.wait(slow.run_id, timeout=10)).output == {"maybe_slow": "slow"}


chain = Flow("chain10")
for i in range(10):
    chain.step(f"s{i}", lambda **kw: len(kw), depends_on=[f"s{i - 1}"] if i else [])


async def test_ten_step_chain_is_driven_by_notifications_not_polling(
    deploy: Deploy, workers: WorkerPool, aclient: AsyncClient
) -> None:
    deploy(chain)
    workers.start(chain, poll_interval=60)  # a poll would take a minute per step
    warm_up = await aclient.start(chain, {})
    await aclient.wait(warm_up.run_id, timeout=20)  # the worker is up and listening
    started = time.perf_counter()
    run = await aclient.start(chain, {})
    done = await aclient.wait(run.run_id, timeout=20)
    elapsed = time.perf_counter() - started
    print(f"10-step chain: {elapsed * 1000:.0f} ms")
    assert done.status == "completed"
    assert elapsed < 5  # ten polls would take ten minutes


async def test_heartbeats_and_stop_are_recorded_in_workers(
    deploy: Deploy, workers: WorkerPool, db_url: str
) -> None:
    deploy(chain)
    worker = workers.start(chain, heartbeat_interval=0.05)
    with psycopg.connect(db_url, autocommit=True) as conn:
        beats = set()
        for _ in range(200):
            row = conn.execute(
                "select last_heartbeat_at, flow_slugs, stopped_at from pgflow.workers "
                "where worker_id = %s",
                [worker.worker_id],
            ).fetchone()
            if row is not None:
                beats.add(row[0])
                assert row[1] == ["chain10"] and row[2] is None
            if len(beats) >= 3:
                break
            await asyncio.sleep(0.02)
        assert len(beats) >= 3
        await workers.stop(worker)
        stopped = conn.execute(
            "select stopped_at from pgflow.workers where worker_id = %s", [worker.worker_id]
        ).fetchone()
        assert stopped is not None and stopped[0] is not None


async def test_until_idle_returns_once_nothing_is_left(
    deploy: Deploy, aclient: AsyncClient, db_url: str
) -> None:
    from pgflow import Worker

    deploy(diamond)
    runs = [await aclient.start(diamond, {"url": f"u{i}"}) for i in range(3)]
    worker = Worker([diamond], db_url, poll_interval=60, retry_base_delay=0)
    await asyncio.wait_for(worker.run_async(until_idle=True), 20)
    with psycopg.connect(db_url) as conn:
        for run in runs:
            assert {t["status"] for t in tasks_of(conn, run.run_id)} == {"completed"}


sync_ctx_flow = Flow("sync_ctx_flow")


@sync_ctx_flow.step()
def sync_inspect(input: dict[str, int], ctx: Context) -> int:
    with ctx.sync_connection() as conn:
        row = conn.execute("select 40 + %s as n", [input["n"]]).fetchone()
    assert row is not None
    return int(row[0] if isinstance(row, tuple) else row["n"])


async def test_sync_handlers_get_a_sync_connection(
    deploy: Deploy, workers: WorkerPool, aclient: AsyncClient
) -> None:
    deploy(sync_ctx_flow)
    workers.start(sync_ctx_flow)
    run = await aclient.start(sync_ctx_flow, {"n": 2})
    done = await aclient.wait(run.run_id, timeout=10)
    assert done.output == {"sync_inspect": 42}


def test_context_outside_a_worker_explains_itself() -> None:
    ctx = Context(run_id=uuid.uuid4(), flow_slug="f", step_slug="s")
    with pytest.raises(RuntimeError, match="inside a pgflow Worker"):
        ctx.sync_connection()
