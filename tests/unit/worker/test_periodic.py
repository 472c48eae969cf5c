"""Periodic worker jobs: a pass that failed for a passing reason is tried again soon."""

from __future__ import annotations

import asyncio

import psycopg
import pytest
from psycopg import errors

from pgflow.worker.periodic import Periodic


class Flaky(Periodic):
    """Fails its first passes with ``failures``, then succeeds; records when each ran."""

    name = "flaky work"

    def __init__(self, interval: float, *failures: BaseException) -> None:
        super().__init__(store=None, interval=interval)  # type: ignore[arg-type]
        self.failures = list(failures)
        self.passes: list[float] = []

    async def one_pass(self) -> int:
        self.passes.append(asyncio.get_running_loop().time())
        if self.failures:
            raise self.failures.pop(0)
        return 1


async def _passes(job: Flaky, n: int, within: float) -> list[float]:
    task = asyncio.create_task(job.run())
    try:
        async with asyncio.timeout(within):
            while len(job.passes) < n:
                await asyncio.sleep(0.01)
    finally:
        task.cancel()
    return job.passes


@pytest.mark.parametrize(
    "failure",
    [
        errors.DeadlockDetected("deadlock detected"),
        errors.LockNotAvailable("canceling statement due to lock timeout"),
        psycopg.OperationalError("server closed the connection unexpectedly"),
    ],
    ids=["deadlock", "lock-timeout", "connection"],
)
async def test_a_pass_that_failed_for_a_passing_reason_is_tried_again_within_seconds(
    failure: BaseException,
) -> None:
    # at start-up a worker's jobs run side by side: a pass that lost a deadlock or timed
    # out on a lock would otherwise wait a whole interval (minutes) for its next try
    job = Flaky(600, failure, failure)
    passes = await _passes(job, 3, within=10)
    assert passes[1] - passes[0] < 1.5 and passes[2] - passes[1] < 2.5


async def test_a_pass_that_failed_for_good_reason_waits_for_the_interval() -> None:
    job = Flaky(600, errors.InsufficientPrivilege("permission denied"))
    with pytest.raises(TimeoutError):
        await _passes(job, 2, within=2)
    assert len(job.passes) == 1


async def test_a_success_after_failures_waits_the_whole_interval_again() -> None:
    job = Flaky(3, errors.DeadlockDetected("deadlock detected"))
    passes = await _passes(job, 3, within=10)
    assert passes[1] - passes[0] < 1.5  # the retry
    assert passes[2] - passes[1] >= 2.9  # then the interval
