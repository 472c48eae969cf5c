"""Handler failures: stored with type, message and traceback; retried; timeouts enforced."""

from __future__ import annotations

import threading
import time

import psycopg
import pytest

from pgflow import AsyncClient, Context, Flow, RunFailedError
from tests.integration.runtime import Deploy, WorkerPool, tasks_of


class Boom(Exception):
    pass


flaky = Flow("flaky", max_attempts=3, base_delay=0)
calls: list[int] = []


@flaky.step()
def wobble(input: dict[str, int], ctx: Context) -> int:
    calls.append(ctx.attempt)
    if ctx.attempt < input["succeed_at"]:
        raise Boom(f"attempt {ctx.attempt} went boom")
    return ctx.attempt


async def test_an_exception_is_retried_and_the_run_completes(
    deploy: Deploy, workers: WorkerPool, aclient: AsyncClient, db_url: str
) -> None:
    calls.clear()
    deploy(flaky)
    workers.start(flaky)
    run = await aclient.start(flaky, {"succeed_at": 3})
    done = await aclient.wait(run.run_id, timeout=10)
    assert done.output == {"wobble": 3}
    assert calls == [1, 2, 3]
    with psycopg.connect(db_url) as conn:
        (task,) = tasks_of(conn, run.run_id)
    assert task["attempts_count"] == 3 and task["status"] == "completed"


async def test_exhausted_retries_store_type_message_and_traceback(
    deploy: Deploy, workers: WorkerPool, aclient: AsyncClient, db_url: str
) -> None:
    deploy(flaky)
    workers.start(flaky)
    run = await aclient.start(flaky, {"succeed_at": 99})
    with pytest.raises(RunFailedError) as caught:
        await aclient.wait(run.run_id, timeout=10)
    error = caught.value
    assert error.step_slug == "wobble"
    assert "attempt 3 went boom" in error.error_message
    assert "wobble" in str(error) and str(run.run_id) in str(error)
    with psycopg.connect(db_url) as conn:
        (task,) = tasks_of(conn, run.run_id)
    assert task["status"] == "failed" and task["attempts_count"] == 3
    assert task["error_type"] == f"{__name__}.Boom"
    assert task["error_message"] == "attempt 3 went boom"
    assert 'raise Boom(f"attempt {ctx.attempt} went boom")' in task["error_traceback"]
    assert "test_failures.py" in task["error_traceback"]
    step = error.run.step("wobble")
    assert step.error_type == f"{__name__}.Boom" and step.attempts == 3


slow = Flow("slow", max_attempts=1, timeout=1)
stopped_early = threading.Event()


@slow.step()
async def hang(input: dict[str, bool], ctx: Context) -> str:
    import asyncio

    await asyncio.sleep(30)
    return "never"


@slow.step()
def hang_sync(input: dict[str, bool], ctx: Context) -> str:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if ctx.shutdown.is_set():  # set when the timeout passes
            stopped_early.set()
            return "stopped"
        time.sleep(0.01)
    return "never"


async def test_the_step_timeout_is_enforced_on_async_and_sync_handlers(
    deploy: Deploy, workers: WorkerPool, aclient: AsyncClient, db_url: str
) -> None:
    stopped_early.clear()
    deploy(slow)
    workers.start(slow)
    started = time.monotonic()
    run = await aclient.start(slow, {})
    with pytest.raises(RunFailedError) as caught:
        await aclient.wait(run.run_id, timeout=25)
    # The handlers would run 30 s; the 1 s timeout ends them long before. The margin is wide
    # on purpose: a busy 2-core machine can add seconds, never the 29 the timeout saves.
    assert time.monotonic() - started < 15
    assert "did not finish within its timeout of 1 s" in str(caught.value)
    with psycopg.connect(db_url) as conn:
        errors = {t["step_slug"]: t["error_type"] for t in tasks_of(conn, run.run_id)}
    assert "TimeoutError" in errors.values()
    assert stopped_early.wait(15)  # the sync handler saw ctx.shutdown and returned


lease_bound = Flow("lease_bound", max_attempts=1, timeout=1)


@lease_bound.step()
async def overstay(input: dict[str, int], ctx: Context) -> str:
    import asyncio

    await asyncio.sleep(30)
    return "never"


async def test_a_timed_out_attempt_is_reported_before_its_lease_ends(
    deploy: Deploy, workers: WorkerPool, aclient: AsyncClient, db_url: str
) -> None:
    # Any claim expires the leases that ended (here: a sweep, over and over, as another busy
    # worker's claims would). The worker cuts the handler short of its lease's end, so its
    # TimeoutError is stored before the lease can expire; were it cut a full timeout after
    # the handler started, the report would come after the lease's end, and the sweep in
    # that gap would fail the attempt with LeaseExpired instead.
    deploy(lease_bound)
    workers.start(lease_bound)
    runs = [await aclient.start(lease_bound, {"n": n}) for n in range(4)]
    done = threading.Event()

    def sweep() -> None:
        with psycopg.connect(db_url, autocommit=True) as conn:
            while not done.is_set():
                conn.execute("select pgflow.sweep_expired_tasks()")

    sweeper = threading.Thread(target=sweep)
    sweeper.start()
    try:
        for run in runs:
            with pytest.raises(RunFailedError):
                await aclient.wait(run.run_id, timeout=20)
    finally:
        done.set()
        sweeper.join(10)
    with psycopg.connect(db_url) as conn:
        errors = [t["error_type"] for r in runs for t in tasks_of(conn, r.run_id)]
    assert errors == ["TimeoutError"] * 4


class Unserialisable:
    pass


outputs = Flow("outputs", max_attempts=1)


@outputs.step()
def wrong_type(input: dict[str, str]) -> int:
    return input["value"]  # type: ignore[return-value]


@outputs.step()
def not_json(input: dict[str, str]):  # type: ignore[no-untyped-def]
    return Unserialisable()


async def test_invalid_or_unserialisable_outputs_fail_the_task_clearly(
    deploy: Deploy, workers: WorkerPool, aclient: AsyncClient, db_url: str
) -> None:
    deploy(outputs)
    workers.start(outputs)
    run = await aclient.start(outputs, {"value": "abc"})
    with pytest.raises(RunFailedError):
        await aclient.wait(run.run_id, timeout=10)
    with psycopg.connect(db_url) as conn:
        tasks = {t["step_slug"]: t for t in tasks_of(conn, run.run_id)}
    failed = [t for t in tasks.values() if t["status"] == "failed"]
    assert failed, tasks
    for task in failed:
        assert task["error_type"] == "pgflow.InvalidInputError"
        assert f"step {task['step_slug']!r} of flow 'outputs'" in task["error_message"]
        assert "return value" in task["error_message"]


nul = Flow("nul", max_attempts=1)


@nul.step()
def nul_char(input: dict[str, str]) -> str:
    return "a\x00b"


async def test_an_output_postgres_refuses_becomes_a_clear_failure(
    deploy: Deploy, workers: WorkerPool, aclient: AsyncClient, db_url: str
) -> None:
    deploy(nul)
    workers.start(nul)
    run = await aclient.start(nul, {})
    with pytest.raises(RunFailedError) as caught:
        await aclient.wait(run.run_id, timeout=10)
    assert "Postgres refused the handler's output" in str(caught.value)


deployed_shape = Flow("drifted", max_attempts=1)
deployed_shape.step("first", lambda input: 1)
deployed_shape.step("second", lambda first: first + 1, depends_on=["first"])
code_shape = Flow("drifted", max_attempts=1)  # the worker runs older code: no 'second'
code_shape.step("first", lambda input: 1)


async def test_a_deployed_step_the_code_lacks_fails_with_a_hint(
    deploy: Deploy, workers: WorkerPool, aclient: AsyncClient
) -> None:
    deploy(deployed_shape)
    workers.start(code_shape)
    run = await aclient.start("drifted", {})
    with pytest.raises(RunFailedError) as caught:
        await aclient.wait(run.run_id, timeout=10)
    message = str(caught.value)
    assert "step 'second' of flow 'drifted' is deployed, but this worker's code" in message
