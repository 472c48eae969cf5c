"""Client and AsyncClient against a real Postgres: start, inspect, wait, cancel, list."""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from pydantic import BaseModel

from pgflow import (
    AsyncClient,
    Client,
    ConfigurationError,
    Flow,
    InvalidInputError,
    RunCancelledError,
    RunFailedError,
    RunTimeoutError,
    UnknownFlowError,
    UnknownRunError,
    Worker,
)
from tests.integration.runtime import WORKER_DEFAULTS, Deploy, WorkerPool


class Order(BaseModel):
    order_id: int
    amount: float


orders = Flow("orders", input=Order, max_attempts=1)


@orders.step()
def check(input: Order) -> float:
    if input.amount < 0:
        raise ValueError(f"order {input.order_id} has a negative amount")
    return input.amount


@orders.step(depends_on=[check])
async def charge(check: float) -> str:
    return f"charged {check:.2f}"


UNREACHABLE = "postgresql://nobody@127.0.0.1:1/nowhere?connect_timeout=1"


@pytest.fixture
def sync_worker(db_url: str, deploy: Deploy) -> Iterator[Worker]:
    """A worker running in a background thread (the sync client's counterpart)."""
    deploy(orders)
    worker = Worker([orders], db_url, **WORKER_DEFAULTS)
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    yield worker
    worker.stop()
    thread.join(10)
    assert not thread.is_alive()


def test_invalid_input_is_refused_before_any_sql() -> None:
    with Client(UNREACHABLE) as client, pytest.raises(InvalidInputError) as caught:
        client.start(orders, {"order_id": "not a number", "amount": 1})
    assert "invalid input for flow 'orders'" in str(caught.value)
    assert "order_id" in str(caught.value)


def test_unknown_slug_and_run_ids_are_clear_errors(client: Client, deploy: Deploy) -> None:
    deploy(orders)
    with pytest.raises(UnknownFlowError, match="no_such_flow"):
        client.start("no_such_flow", {})
    with pytest.raises(UnknownRunError, match=r"unknown run"):
        client.get_run(uuid.uuid4())
    with pytest.raises(UnknownRunError, match="is not a run id"):
        client.get_run("abc")


def test_start_accepts_a_model_or_json_and_is_idempotent_with_a_run_id(
    client: Client, deploy: Deploy
) -> None:
    deploy(orders)
    run = client.start("orders", Order(order_id=1, amount=2.5))
    assert run.status == "started" and run.input == {"order_id": 1, "amount": 2.5}
    run_id = uuid.uuid4()
    first = client.start(orders, {"order_id": 2, "amount": 1}, run_id=run_id)
    again = client.start(orders, {"order_id": 2, "amount": 1}, run_id=str(run_id))
    assert first.run_id == again.run_id == run_id
    assert [s.step_slug for s in client.get_run(run_id).steps] == ["check", "charge"]


def test_wait_returns_the_completed_run(client: Client, sync_worker: Worker) -> None:
    run = client.start(orders, {"order_id": 3, "amount": 4})
    done = client.wait(run.run_id, timeout=10)
    assert done.status == "completed" and done.output == {"charge": "charged 4.00"}
    assert [s.status for s in done.steps] == ["completed", "completed"]
    assert done.duration is not None and done.step("check").duration is not None


def test_wait_raises_with_the_failing_step_and_its_message(
    client: Client, sync_worker: Worker
) -> None:
    run = client.start(orders, {"order_id": 4, "amount": -1})
    with pytest.raises(RunFailedError) as caught:
        client.wait(run.run_id, timeout=10)
    error = caught.value
    assert error.step_slug == "check"
    assert error.error_type == "ValueError"
    assert "order 4 has a negative amount" in error.error_message
    assert "failed at step 'check'" in str(error) and error.hint


def test_wait_times_out_when_no_worker_runs(client: Client, deploy: Deploy) -> None:
    deploy(orders)
    run = client.start(orders, {"order_id": 5, "amount": 1})
    with pytest.raises(RunTimeoutError, match=r"did not finish within 0.2 s") as caught:
        client.wait(run.run_id, timeout=0.2)
    assert "check started" in str(caught.value)
    assert caught.value.run.status == "started"


def test_cancel_then_wait_raises_cancelled(client: Client, deploy: Deploy) -> None:
    deploy(orders)
    run = client.start(orders, {"order_id": 6, "amount": 1})
    cancelled = client.cancel(run.run_id)
    assert cancelled.status == "cancelled"
    assert {s.status for s in cancelled.steps} == {"cancelled"}
    with pytest.raises(RunCancelledError):
        client.wait(run.run_id)


async def test_a_waiter_wakes_up_when_the_run_is_cancelled(
    aclient: AsyncClient, deploy: Deploy, db_url: str
) -> None:
    deploy(orders)
    run = await aclient.start(orders, {"order_id": 7, "amount": 1})
    waiter = asyncio.create_task(aclient.wait(run.run_id, timeout=30))
    await asyncio.sleep(0.1)  # the waiter is listening (its outcome does not depend on it)
    async with AsyncClient(db_url) as other:
        await other.cancel(run.run_id)
    with pytest.raises(RunCancelledError):
        await asyncio.wait_for(waiter, 10)


async def test_watch_yields_each_change_until_the_run_finishes(
    aclient: AsyncClient, deploy: Deploy, workers: WorkerPool
) -> None:
    deploy(orders)
    run = await aclient.start(orders, {"order_id": 8, "amount": 1})
    workers.start(orders)
    seen = [r.status async for r in aclient.watch(run.run_id, timeout=10)]
    assert seen[-1] == "completed" and set(seen[:-1]) <= {"started"}


def test_runs_lists_newest_first_with_filters(client: Client, deploy: Deploy) -> None:
    deploy(orders)
    first = client.start(orders, {"order_id": 9, "amount": 1})
    second = client.start(orders, {"order_id": 10, "amount": 1})
    client.cancel(first.run_id)
    assert [r.run_id for r in client.runs()][:2] == [second.run_id, first.run_id]
    assert [r.run_id for r in client.runs(status="cancelled")] == [first.run_id]
    assert [r.run_id for r in client.runs(flow_slug="orders", limit=1)] == [second.run_id]
    assert client.runs(flow_slug="other") == []
    with pytest.raises(InvalidInputError, match="unknown run status 'done'"):
        client.runs(status="done")


def test_an_external_connection_joins_the_callers_transaction(db_url: str, deploy: Deploy) -> None:
    deploy(orders)
    with psycopg.connect(db_url) as conn:
        client = Client(connection=conn)
        run = client.start(orders, {"order_id": 11, "amount": 1})
        conn.rollback()
        with pytest.raises(UnknownRunError):
            client.get_run(run.run_id)
        with pytest.raises(ConfigurationError, match="autocommit"):
            client.wait(run.run_id, timeout=0.1)
