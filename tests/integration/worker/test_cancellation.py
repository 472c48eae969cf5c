"""Cancellation reaches running handlers (docs/workers.md, "Cancellation").

Within a second of ``cancel_run`` committing, every running handler of the run sees
``ctx.cancelled``; an async handler still running ``cancel_grace`` seconds later is
cancelled; whatever a cancelled task returns is discarded (the task and the run stay
cancelled, no output is stored, no "task completed" line is logged).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from pgflow import AsyncClient, Context, Flow
from pgflow.worker import listener as listener_module
from pgflow.worker import worker as worker_module
from tests.integration.runtime import Deploy, WorkerPool, tasks_of

BOUND = 1.0  # seconds from the cancel's commit to the handler seeing ctx.cancelled
GRACE = 0.5  # cancel_grace of the workers under test
# Heartbeats (and the safety-net check that goes with them while LISTEN is up) far apart:
# only the pgflow_cancelled notification, or the poll while LISTEN is down, can be in time.
OPTIONS = {"cancel_grace": GRACE, "heartbeat_interval": 30.0}

started: dict[str, threading.Event] = {}
seen: dict[str, float] = {}  # handler -> time.monotonic() when it saw the cancellation

sync_flow = Flow("cancel_sync")
async_flow = Flow("cancel_async")
failing = Flow("cancel_sibling", max_attempts=1)
quick = Flow("cancel_quick")


@sync_flow.step()
def spin(input: dict[str, Any], ctx: Context) -> str:
    started["spin"].set()
    deadline = time.monotonic() + 20  # never hang the test's thread for good
    while not ctx.cancelled.is_set() and time.monotonic() < deadline:
        time.sleep(0.005)  # one unit of work
    seen["spin"] = time.monotonic()
    return "finished anyway"  # discarded


@async_flow.step()
async def cooperates(input: dict[str, Any], ctx: Context) -> str:
    started["cooperates"].set()
    await ctx.cancelled.wait()
    seen["cooperates"] = time.monotonic()
    return "stopped early"  # discarded


@async_flow.step()
async def ignores(input: dict[str, Any], ctx: Context) -> str:
    started["ignores"].set()
    try:
        await asyncio.sleep(30)  # never looks at ctx.cancelled
    except asyncio.CancelledError:
        seen["ignores"] = time.monotonic()
        raise
    return "too late"


@failing.step()
async def boom(input: dict[str, Any]) -> str:
    await asyncio.to_thread(started["sibling"].wait, 10)
    seen["boom"] = time.monotonic()
    raise RuntimeError("boom: the run fails")


@failing.step()
async def sibling(input: dict[str, Any], ctx: Context) -> str:
    started["sibling"].set()
    await ctx.cancelled.wait()
    seen["sibling"] = time.monotonic()
    return "stopped early"  # discarded


@quick.step()
def answer(input: dict[str, Any]) -> int:
    return 42


class Records(logging.Handler):
    """Collects pgflow.worker records; ``wait(action)`` blocks until one is logged."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []
        self._arrived = threading.Condition()

    def emit(self, record: logging.LogRecord) -> None:
        with self._arrived:
            self.records.append(record)
            self._arrived.notify_all()

    def of(self, action: str, run_id: Any = None) -> list[logging.LogRecord]:
        return [
            r
            for r in self.records
            if getattr(r, "action", None) == action
            and (run_id is None or getattr(r, "run_id", None) == str(run_id))
        ]

    async def wait(self, action: str, count: int = 1) -> None:
        def arrived() -> bool:
            with self._arrived:
                return self._arrived.wait_for(lambda: len(self.of(action)) >= count, 10)

        assert await asyncio.to_thread(arrived), f"no {action!r} record within 10 s"


@pytest.fixture(autouse=True)
def fresh() -> None:
    seen.clear()
    for name in ("spin", "cooperates", "ignores", "sibling"):
        started[name] = threading.Event()


@pytest.fixture
def records() -> Iterator[Records]:
    handler = Records()
    logger = logging.getLogger("pgflow.worker")
    saved = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    yield handler
    logger.removeHandler(handler)
    logger.setLevel(saved)


async def _started(*names: str) -> None:
    for name in names:
        assert await asyncio.to_thread(started[name].wait, 10), f"{name} did not start"


def _assert_cancelled_and_nothing_stored(db_url: str, run_id: Any, records: Records) -> None:
    with psycopg.connect(db_url) as conn:
        status = conn.execute("select status from pgflow.runs where run_id = %s", [run_id])
        assert status.fetchone() == ("cancelled",)
        for task in tasks_of(conn, run_id):
            assert (task["status"], task["output"]) == ("cancelled", None)
    assert records.of("task_completed", run_id) == []  # no misleading "task completed"


async def test_a_sync_handler_sees_ctx_cancelled_within_a_second_and_its_result_is_dropped(
    deploy: Deploy, workers: WorkerPool, aclient: AsyncClient, db_url: str, records: Records
) -> None:
    deploy(sync_flow, quick)
    workers.start(sync_flow, quick, concurrency=1, **OPTIONS)
    run = await aclient.start(sync_flow, {})
    await _started("spin")
    before = time.monotonic()
    await aclient.cancel(run.run_id)  # commits before it returns
    await records.wait("result_discarded")
    assert seen["spin"] - before < BOUND
    _assert_cancelled_and_nothing_stored(db_url, run.run_id, records)
    assert len(records.of("task_cancelled", run.run_id)) == 1
    (dropped,) = records.of("result_discarded", run.run_id)
    assert dropped.levelno == logging.INFO and "discarded the result" in dropped.getMessage()
    # the slot is free again (concurrency 1): the next run completes
    after = await aclient.start(quick, {})
    assert (await aclient.wait(after.run_id, timeout=10)).output == {"answer": 42}


async def test_async_handlers_see_ctx_cancelled_and_one_ignoring_it_is_cancelled_after_grace(
    deploy: Deploy, workers: WorkerPool, aclient: AsyncClient, db_url: str, records: Records
) -> None:
    deploy(async_flow)
    workers.start(async_flow, **OPTIONS)
    run = await aclient.start(async_flow, {})
    await _started("cooperates", "ignores")
    before = time.monotonic()
    await aclient.cancel(run.run_id)
    await records.wait("result_discarded")
    await records.wait("handler_cancelled")
    assert seen["cooperates"] - before < BOUND
    assert GRACE <= seen["ignores"] - before < GRACE + BOUND
    _assert_cancelled_and_nothing_stored(db_url, run.run_id, records)
    assert len(records.of("task_cancelled", run.run_id)) == 2
    assert [r.step_slug for r in records.of("result_discarded")] == ["cooperates"]  # type: ignore[attr-defined]
    assert [r.step_slug for r in records.of("handler_cancelled")] == ["ignores"]  # type: ignore[attr-defined]


async def test_a_failing_step_signals_the_other_running_handlers_of_its_run(
    deploy: Deploy, workers: WorkerPool, aclient: AsyncClient, db_url: str, records: Records
) -> None:
    deploy(failing)
    workers.start(failing, **OPTIONS)
    run = await aclient.start(failing, {})
    await records.wait("result_discarded")
    assert seen["sibling"] - seen["boom"] < BOUND  # from the raise, before its report
    finished = await aclient.get_run(run.run_id)
    assert finished.status == "failed"
    assert finished.step("sibling").status == "cancelled"
    assert finished.step("sibling").output is None
    (dropped,) = records.of("result_discarded", run.run_id)
    assert dropped.step_slug == "sibling"  # type: ignore[attr-defined]
    assert records.of("task_completed", run.run_id) == []


async def test_without_listen_a_poll_still_reaches_the_handler_within_the_poll_interval(
    deploy: Deploy,
    workers: WorkerPool,
    aclient: AsyncClient,
    db_url: str,
    records: Records,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def no_listen(self: Any) -> None:
        raise psycopg.OperationalError("LISTEN is unavailable in this test")

    async def no_wait(listener: Any, timeout: float = 5.0) -> None:
        return None

    monkeypatch.setattr(listener_module.TaskListener, "_listen", no_listen)
    monkeypatch.setattr(worker_module, "_first_listen", no_wait)
    deploy(sync_flow)
    workers.start(sync_flow, poll_interval=0.2, retry_base_delay=0.05, **OPTIONS)
    run = await aclient.start(sync_flow, {})
    await _started("spin")
    before = time.monotonic()
    await aclient.cancel(run.run_id)
    await records.wait("result_discarded")
    assert seen["spin"] - before < BOUND
    _assert_cancelled_and_nothing_stored(db_url, run.run_id, records)


racing = Flow("cancel_racing")


@racing.step()
async def cancels_itself_and_returns(input: dict[str, Any], ctx: Context) -> str:
    # The cancel commits, then the handler returns at once: before the worker can learn
    # of the cancellation, so its report goes to the database, which refuses it.
    async with await psycopg.AsyncConnection.connect(input["url"], autocommit=True) as conn:
        await conn.execute("select pgflow.cancel_run(%s)", [ctx.run_id])
    return "too late"


async def test_a_result_returned_just_after_the_cancel_is_logged_as_discarded_not_completed(
    deploy: Deploy, workers: WorkerPool, aclient: AsyncClient, db_url: str, records: Records
) -> None:
    deploy(racing)
    workers.start(racing, **OPTIONS)
    run = await aclient.start(racing, {"url": db_url})
    await records.wait("result_discarded")
    _assert_cancelled_and_nothing_stored(db_url, run.run_id, records)
    (dropped,) = records.of("result_discarded", run.run_id)
    assert "discarded the result" in dropped.getMessage()
