"""A task the worker cannot decode fails alone; the worker keeps serving (docs/guarantees.md).

Each test runs one real worker for a poisoned flow and a healthy one. The poison task's
attempts fail with error_type ``InputDecodeError`` (its handler never runs), retries and
exhaustion apply as for any failure, the healthy runs complete, and the worker is still
running at the end.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from pgflow import AsyncClient, Flow, Worker
from tests.integration.poison import (
    DEEP,
    LONG_NUMBER,
    complete_root,
    start_run,
    task_rows,
    until_status,
)
from tests.integration.runtime import Deploy, WorkerPool

handled: list[str] = []

poisoned = Flow("poisoned", max_attempts=2, base_delay=0)


@poisoned.step()
def first(input: Any) -> str:
    handled.append("first")
    return "ran"


@poisoned.step(depends_on=[first])
def second(first: Any) -> str:
    handled.append("second")
    return "ran"


fanout = Flow("fanout", max_attempts=3, base_delay=0)  # room for the healthy elements


@fanout.array()
def source(input: Any) -> list[Any]:
    handled.append("source")
    return []


@fanout.map(array=source)
def each(item: Any) -> Any:
    handled.append(f"each {item!r}")
    return item


healthy = Flow("healthy")


@healthy.step()
def echo(input: dict[str, int]) -> dict[str, int]:
    return input


@pytest.fixture(autouse=True)
def clear_handled() -> None:
    handled.clear()


async def serve_healthy(aclient: AsyncClient, n: int) -> None:
    """A run of another flow completes on the same worker."""
    run = await aclient.start(healthy, {"n": n})
    done = await aclient.wait(run.run_id, timeout=15)
    assert done.output == {"echo": {"n": n}}


def assert_running(workers: WorkerPool, worker: Worker) -> None:
    (task,) = [task for candidate, task in workers.running if candidate is worker]
    assert not task.done(), task.exception() if task.done() else None


def assert_poisoned(task: dict[str, Any], flow: Flow, problem: str) -> None:
    """The task failed every attempt with InputDecodeError, saying what, where and what to do."""
    assert task["status"] == "failed", task
    (step,) = [step for step in flow.steps if step.slug == task["step_slug"]]
    assert task["attempts_count"] == step.max_attempts, task
    assert task["error_type"] == "InputDecodeError"
    message = task["error_message"]
    where = f"task {task['task_index']} of step {task['step_slug']!r} of flow {flow.slug!r}"
    for fragment in (where, "cannot be decoded", problem, "Hint: ", "start a new run"):
        assert fragment in message, message


@pytest.mark.parametrize(
    ("value", "problem"),
    [(DEEP, "nested too deeply"), (LONG_NUMBER, "5001 digits")],
    ids=["deep", "long-number"],
)
async def test_a_poison_run_input_fails_its_task_and_the_worker_keeps_serving(
    deploy: Deploy,
    workers: WorkerPool,
    aclient: AsyncClient,
    db_url: str,
    value: str,
    problem: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="pgflow.worker")
    deploy(poisoned, healthy)
    run_id = start_run(db_url, "poisoned", value)
    worker = workers.start(poisoned, healthy)
    await serve_healthy(aclient, 1)
    await until_status(db_url, run_id, "failed")
    first_task = task_rows(db_url, run_id)[0]
    assert first_task["step_slug"] == "first"
    assert_poisoned(first_task, poisoned, problem)
    assert handled == []  # the handler never saw the value
    # a report is logged once stored, a moment after the status the test saw committed
    for _ in range(100):
        logged = [r.getMessage() for r in caplog.records if "InputDecodeError" in r.getMessage()]
        if len(logged) >= 2:
            break
        await asyncio.sleep(0.05)
    assert len(logged) == 2 and f"run={run_id} step=first" in logged[0], logged
    await serve_healthy(aclient, 2)
    assert_running(workers, worker)


async def test_a_poison_flow_input_fails_a_dependent_task_whose_own_input_is_fine(
    deploy: Deploy, workers: WorkerPool, aclient: AsyncClient, db_url: str
) -> None:
    deploy(poisoned, healthy)
    start_run(db_url, "poisoned", LONG_NUMBER)
    run_id = complete_root(db_url, "poisoned", "first", '"fine"')
    worker = workers.start(poisoned, healthy)
    await until_status(db_url, run_id, "failed")
    second_task = {t["step_slug"]: t for t in task_rows(db_url, run_id)}["second"]
    assert_poisoned(second_task, poisoned, "5001 digits")
    assert second_task["error_message"].startswith("the flow input of task 0")
    assert handled == []
    await serve_healthy(aclient, 1)
    assert_running(workers, worker)


async def test_a_poison_dependency_output_fails_the_dependent_task(
    deploy: Deploy, workers: WorkerPool, aclient: AsyncClient, db_url: str
) -> None:
    deploy(poisoned, healthy)
    start_run(db_url, "poisoned", '{"ok": true}')
    run_id = complete_root(db_url, "poisoned", "first", DEEP)
    worker = workers.start(poisoned, healthy)
    await serve_healthy(aclient, 1)
    await until_status(db_url, run_id, "failed")
    by_step = {t["step_slug"]: t for t in task_rows(db_url, run_id)}
    assert by_step["first"]["status"] == "completed"
    assert_poisoned(by_step["second"], poisoned, "nested too deeply")
    assert handled == []
    await serve_healthy(aclient, 2)
    assert_running(workers, worker)


async def test_one_poison_map_element_fails_alone(
    deploy: Deploy, workers: WorkerPool, aclient: AsyncClient, db_url: str
) -> None:
    deploy(fanout, healthy)
    start_run(db_url, "fanout", "{}")
    elements = f'["a", {LONG_NUMBER}, "c"]'
    run_id = complete_root(db_url, "fanout", "source", elements)
    worker = workers.start(fanout, healthy)
    await serve_healthy(aclient, 1)
    await until_status(db_url, run_id, "failed")
    tasks = {t["task_index"]: t for t in task_rows(db_url, run_id) if t["step_slug"] == "each"}
    assert tasks[0]["status"] == tasks[2]["status"] == "completed"
    assert_poisoned(tasks[1], fanout, "5001 digits")
    assert sorted(handled) == ["each 'a'", "each 'c'"]
    await serve_healthy(aclient, 2)
    assert_running(workers, worker)
