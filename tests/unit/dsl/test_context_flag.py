"""``ctx.cancelled`` and ``ctx.shutdown``: one flag, usable from sync and async handlers."""

from __future__ import annotations

import asyncio
import threading
import uuid

from pgflow import Context
from pgflow.dsl.context import Flag


def test_a_context_starts_with_both_flags_unset_and_separate() -> None:
    ctx = Context(run_id=uuid.uuid4(), flow_slug="f", step_slug="s")
    assert not ctx.cancelled.is_set() and not ctx.shutdown.is_set()
    ctx.cancelled.set()
    assert ctx.cancelled.is_set() and not ctx.shutdown.is_set()
    assert repr(ctx.cancelled) == "<Flag set>"


def test_sync_wait_times_out_then_returns_at_once_once_set() -> None:
    flag = Flag()
    assert flag.sync_wait(0.01) is False
    flag.set()
    flag.set()  # idempotent
    assert flag.sync_wait(None) is True


def test_a_thread_blocked_in_sync_wait_wakes_when_the_loop_sets_the_flag() -> None:
    flag = Flag()
    woke = threading.Event()
    thread = threading.Thread(target=lambda: flag.sync_wait(10) and woke.set())
    thread.start()

    async def main() -> None:
        flag.set()

    asyncio.run(main())
    thread.join(10)
    assert woke.is_set()


async def test_async_wait_wakes_when_another_thread_sets_the_flag() -> None:
    flag = Flag()
    waiters = [asyncio.create_task(flag.wait()) for _ in range(3)]
    await asyncio.sleep(0)  # let them register
    threading.Thread(target=flag.set).start()
    assert await asyncio.wait_for(asyncio.gather(*waiters), 10) == [True, True, True]
    assert await flag.wait() is True  # already set: at once


async def test_async_wait_with_a_timeout_returns_false_and_leaves_no_waiter() -> None:
    flag = Flag()
    assert await flag.wait(timeout=0.01) is False
    assert flag._waiters == []
    waiter = asyncio.create_task(flag.wait())
    await asyncio.sleep(0)
    waiter.cancel()
    await asyncio.gather(waiter, return_exceptions=True)
    assert flag._waiters == []  # a cancelled waiter unregisters itself
    flag.set()
    assert flag.is_set()


def test_threads_blocked_on_one_flag_all_wake_and_another_flag_stays_unset() -> None:
    flag, other = Flag(), Flag()
    results: list[bool] = []
    threads = [
        threading.Thread(target=lambda: results.append(flag.sync_wait(10))) for _ in range(3)
    ]
    for thread in threads:
        thread.start()
    flag.set()
    for thread in threads:
        thread.join(10)
    assert results == [True, True, True]
    assert not other.is_set() and other.sync_wait(0.01) is False
