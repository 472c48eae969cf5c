"""The daemon thread pool sync handlers run in (pgflow.worker.threads)."""

from __future__ import annotations

import threading

import pytest

from pgflow.worker.threads import DaemonThreadPool


def test_results_and_exceptions_reach_the_future_even_base_exceptions() -> None:
    pool = DaemonThreadPool(2)
    try:
        assert pool.submit(lambda x: x * 2, 21).result(10) == 42

        def exits() -> None:
            raise SystemExit(3)

        error = pool.submit(exits).exception(10)
        assert isinstance(error, SystemExit) and error.code == 3
    finally:
        pool.shutdown()


def test_threads_are_daemons_and_bounded() -> None:
    pool = DaemonThreadPool(2, thread_name_prefix="t")
    release = threading.Event()
    seen: list[threading.Thread] = []

    def hold() -> None:
        seen.append(threading.current_thread())
        release.wait(10)

    futures = [pool.submit(hold) for _ in range(5)]
    try:
        assert all(t.daemon for t in pool._threads)
        assert len(pool._threads) == 2  # five calls, never more than two threads
    finally:
        release.set()
        for future in futures:
            future.result(10)
        pool.shutdown()
    assert {t.name for t in seen} <= {"t_0", "t_1"}


def test_shutdown_cancels_queued_calls_and_refuses_new_ones() -> None:
    pool = DaemonThreadPool(1)
    release = threading.Event()
    running = pool.submit(release.wait, 10)
    queued = pool.submit(lambda: "never")
    pool.shutdown(wait=False, cancel_futures=True)
    assert queued.cancelled()
    with pytest.raises(RuntimeError, match="shut down"):
        pool.submit(lambda: None)
    release.set()
    assert running.result(10) is True
