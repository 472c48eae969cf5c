"""Client.retry / AsyncClient.retry and starts validated against the stored input schema."""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest
from pydantic import BaseModel, Field

from pgflow import (
    AsyncClient,
    Client,
    Flow,
    InvalidInputError,
    RunFailedError,
    ShapeMismatchError,
    UnknownRunError,
    keyed_run_id,
)
from tests.integration.runtime import Deploy, WorkerPool

calls: Counter[str] = Counter()
broken: set[str] = set()


def _maybe_break(name: str) -> None:
    calls[name] += 1
    if name in broken:
        raise RuntimeError(f"{name} has a bug")


chain = Flow("retry_chain", max_attempts=1)


@chain.step()
def first(input: dict[str, Any]) -> int:
    _maybe_break("first")
    return 1


@chain.step(depends_on=[first])
def second(first: int) -> int:
    _maybe_break("second")
    return first + 1


@chain.step(depends_on=[second])
def third(second: int) -> int:
    _maybe_break("third")
    return second + 1


fan = Flow("retry_map", input=list[int], max_attempts=1)


@fan.map()
def square(item: int) -> int:
    _maybe_break(f"square[{item}]")
    return item * item


@fan.step(depends_on=[square])
def total(square: list[int]) -> int:
    return sum(square)


class Signup(BaseModel):
    email: str
    age: int = Field(ge=0)
    tags: list[str] = []


signups = Flow("signups", input=Signup)


@signups.step()
def greet(input: Signup) -> str:
    return f"hello {input.email}"


@pytest.fixture(autouse=True)
def reset() -> None:
    calls.clear()
    broken.clear()


async def test_a_failed_chain_fixed_and_retried_runs_only_what_had_not_completed(
    aclient: AsyncClient, deploy: Deploy, workers: WorkerPool
) -> None:
    deploy(chain)
    workers.start(chain)
    broken.add("second")
    run = await aclient.start(chain, {})
    with pytest.raises(RunFailedError, match="second has a bug"):
        await aclient.wait(run.run_id, timeout=30)
    broken.clear()  # the fix
    retried = await aclient.retry(run.run_id)
    assert retried.status == "started"
    assert {s.step_slug: s.status for s in retried.steps}["first"] == "completed"
    done = await aclient.wait(run.run_id, timeout=30)
    assert done.output == {"third": 3}
    assert calls == Counter({"first": 1, "second": 2, "third": 1})


async def test_only_the_failed_map_elements_run_again(
    aclient: AsyncClient, deploy: Deploy, workers: WorkerPool
) -> None:
    deploy(fan)
    broken.add("square[3]")
    workers.start(fan, concurrency=1)  # one at a time: every element runs before the failure
    run = await aclient.start(fan, [1, 2, 3])
    with pytest.raises(RunFailedError):
        await aclient.wait(run.run_id, timeout=30)
    before = dict(calls)
    broken.clear()
    await aclient.retry(run.run_id)
    done = await aclient.wait(run.run_id, timeout=30)
    assert done.output == {"total": 14}
    reran = {name: calls[name] - before.get(name, 0) for name in calls}
    assert {name: n for name, n in reran.items() if n} == {"square[3]": 1}


async def test_a_cancelled_run_is_retried(
    aclient: AsyncClient, deploy: Deploy, workers: WorkerPool
) -> None:
    deploy(chain)
    run = await aclient.start(chain, {})
    cancelled = await aclient.cancel(run.run_id)
    assert cancelled.status == "cancelled"
    assert (await aclient.retry(run.run_id)).status == "started"
    workers.start(chain)
    assert (await aclient.wait(run.run_id, timeout=30)).output == {"third": 3}


def test_retry_leaves_live_and_completed_runs_and_refuses_bad_ids(
    client: Client, deploy: Deploy, db_url: str
) -> None:
    deploy(chain)
    live = client.start(chain, {})
    assert client.retry(live.run_id).status == "started"
    with pytest.raises(UnknownRunError, match="unknown run") as unknown:
        client.retry(uuid.uuid4())
    assert unknown.value.sqlstate == "PGF07" and unknown.value.hint
    with pytest.raises(UnknownRunError, match="is not a run id") as malformed:
        client.retry("not-a-uuid")
    assert malformed.value.hint
    client.cancel(live.run_id)
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(
            "update pgflow.runs set flow_checksum = 'other' where run_id = %s", [live.run_id]
        )
    with pytest.raises(ShapeMismatchError, match="changed since the run started") as changed:
        client.retry(live.run_id)
    assert changed.value.sqlstate == "PGF11"
    assert client.get_run(live.run_id).status == "cancelled"


def _runs(db_url: str) -> int:
    with psycopg.connect(db_url) as conn:
        row = conn.execute("select count(*) from pgflow.runs").fetchone()
    assert row is not None
    return int(row[0])


def test_starts_by_slug_are_validated_against_the_stored_schema(
    client: Client, deploy: Deploy, db_url: str
) -> None:
    deploy(signups)
    with pytest.raises(InvalidInputError) as caught:
        client.start("signups", {"age": -1, "tags": ["a", 2]})
    assert caught.value.errors == [
        ("input", "'email' is a required property"),
        ("input.age", "-1 is less than the minimum of 0"),
        ("input.tags[1]", "2 is not of type 'string'"),
    ]
    message = str(caught.value)
    assert "invalid input for flow 'signups' (3 errors; nothing was started)" in message
    assert "  input.tags[1]: 2 is not of type 'string'" in message
    with pytest.raises(InvalidInputError, match="'email' is a required property"):
        client.start("signups", {})
    assert _runs(db_url) == 0
    assert client.start("signups", {"email": "a@b.c", "age": 3}).status == "started"
    with pytest.raises(InvalidInputError, match="invalid input for flow 'signups'"):
        client.start(signups, {"email": "a@b.c", "age": -1})  # the pydantic model, as before
    assert _runs(db_url) == 1


async def test_the_async_client_validates_too(aclient: AsyncClient, deploy: Deploy) -> None:
    deploy(signups)
    with pytest.raises(InvalidInputError) as caught:
        await aclient.start("signups", ["not", "an", "object"])
    assert caught.value.errors == [("input", "['not', 'an', 'object'] is not of type 'object'")]
    assert (await aclient.start("signups", {"email": "x@y.z", "age": 1})).status == "started"


def test_flows_without_a_stored_schema_start_unvalidated(client: Client, db_url: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:  # pgflow-style SQL: no schema
        conn.execute("select pgflow.create_flow('plain')")
        conn.execute("select pgflow.add_step('plain', 'only')")
    assert client.start("plain", [1, "anything"]).status == "started"


def test_a_redeployed_input_model_is_what_starts_are_checked_against(
    client: Client, deploy: Deploy
) -> None:
    deploy(signups)
    client.start("signups", {"email": "a@b.c", "age": 1})

    class SignupV2(BaseModel):
        email: str
        age: int
        country: str

    again = Flow("signups", input=SignupV2)
    again.step("greet", lambda input: "hi")  # same shape, new input model: a tunable
    deploy(again)
    with pytest.raises(InvalidInputError, match="'country' is a required property"):
        client.start("signups", {"email": "a@b.c", "age": 1})
    client.start("signups", {"email": "a@b.c", "age": 1, "country": "NL"})


ship = Flow("ship", input=dict[str, int])


@ship.step()
def label(input: dict[str, int]) -> int:
    return input["order"]


def test_the_documented_keyed_start_starts_an_order_once_in_its_month(
    client: Client, deploy: Deploy, db_url: str
) -> None:
    # docs/runs.md, "Idempotent starts"
    deploy(ship)
    order_id, placed_at = 7, datetime.now(UTC)
    run = client.start(
        ship, {"order": order_id}, run_id=keyed_run_id(f"order:{order_id}", placed_at)
    )
    again = client.start(ship, {"order": 8}, run_id=keyed_run_id(f"order:{order_id}", placed_at))
    assert again.run_id == run.run_id and again.input == {"order": order_id}
    with psycopg.connect(db_url) as conn:
        row = conn.execute(
            "select tableoid::regclass::text from pgflow.runs where run_id = %s", [run.run_id]
        ).fetchone()
    assert row is not None and row[0] == f"pgflow.runs_p{placed_at:%Y%m}"
