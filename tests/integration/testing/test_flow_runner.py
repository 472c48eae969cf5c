"""flow_runner, used the way a user's test suite uses it: runs, fakes, failures, bad input."""

from __future__ import annotations

import psycopg
import pytest
from pydantic import BaseModel

from pgflow import Client, Context, Flow, Run
from pgflow.errors import (
    ConfigurationError,
    DefinitionError,
    InvalidInputError,
    RunFailedError,
    RunTimeoutError,
    TypeMismatchError,
    UnknownFlowError,
)
from pgflow.testing import FlowRunner


class Order(BaseModel):
    qty: int


shop = Flow("shop", input=Order, max_attempts=2, base_delay=0)


@shop.step()
def price(input: Order) -> int:
    return input.qty * 10


@shop.step(depends_on=[price])
def charge(price: int) -> str:
    raise RuntimeError("the real payment provider must not be called from tests")


@shop.step(depends_on=[price, charge])
async def receipt(price: int, charge: str, ctx: Context) -> str:
    return f"{charge} for {price} (attempt {ctx.attempt})"


def fake_charge(price: int) -> str:
    return f"paid {price}"


def runs_in(db_url: str) -> int:
    with psycopg.connect(db_url) as conn:
        row = conn.execute("select count(*) from pgflow.runs").fetchone()
    assert row is not None
    return int(row[0])


def test_a_flow_runs_to_completion_with_a_fake(flow_runner: FlowRunner) -> None:
    run = flow_runner.run(shop, {"qty": 2}, handlers={"charge": fake_charge})
    assert isinstance(run, Run)
    assert run.status == "completed"
    assert run.output == {"receipt": "paid 20 for 20 (attempt 1)"}
    assert [(s.step_slug, s.status, s.attempts) for s in run.steps] == [
        ("price", "completed", 1),
        ("charge", "completed", 1),
        ("receipt", "completed", 1),
    ]
    assert run.step("charge").output == "paid 20"
    assert flow_runner.get_run(run.run_id) == run


def test_a_fake_may_be_named_by_the_handler_it_replaces(flow_runner: FlowRunner) -> None:
    async def fake_price(input: Order) -> int:
        return 1

    run = flow_runner.run(shop, {"qty": 2}, handlers={charge: fake_charge, price: fake_price})
    assert run.output == {"receipt": "paid 1 for 1 (attempt 1)"}


def test_the_flow_itself_keeps_its_handlers(flow_runner: FlowRunner) -> None:
    flow_runner.run(shop, {"qty": 1}, handlers={"charge": fake_charge})
    assert shop.get_step("charge").handler is charge
    with pytest.raises(RunFailedError, match="payment provider"):
        flow_runner.run(shop, {"qty": 1})


def test_a_fake_for_an_unknown_step_is_refused(flow_runner: FlowRunner, db_url: str) -> None:
    with pytest.raises(DefinitionError) as caught:
        flow_runner.run(shop, {"qty": 1}, handlers={"chrage": fake_charge})
    error = caught.value
    assert str(error).startswith(
        "flow 'shop' has no step 'chrage' to replace (steps: price, charge, receipt)"
    )
    assert error.hint and "handlers=" in error.hint
    assert (error.flow_slug, error.step_slug) == ("shop", "chrage")
    with pytest.raises(DefinitionError, match="is not a step of flow 'shop'"):
        flow_runner.run(shop, {"qty": 1}, handlers={fake_charge: fake_charge})
    assert runs_in(db_url) == 0


def test_a_fake_that_cannot_bind_fails_as_the_dsl_does(
    flow_runner: FlowRunner, db_url: str
) -> None:
    def wrong(amount: int) -> str:
        return "paid"

    with pytest.raises(DefinitionError) as from_runner:
        flow_runner.run(shop, {"qty": 1}, handlers={"charge": wrong})
    again = Flow("shop", input=Order, max_attempts=2, base_delay=0).step("price", price)
    with pytest.raises(DefinitionError) as from_dsl:
        again.step("charge", wrong, depends_on=["price"])
    assert type(from_runner.value) is type(from_dsl.value)
    assert str(from_runner.value) == str(from_dsl.value)
    assert "step 'charge' of flow 'shop'" in str(from_runner.value)
    assert runs_in(db_url) == 0


def test_a_fake_whose_return_type_does_not_fit_is_refused(flow_runner: FlowRunner) -> None:
    def sloppy(price: int) -> int:
        return 3

    with pytest.raises(TypeMismatchError, match="receipt"):  # types are checked across edges
        flow_runner.run(shop, {"qty": 1}, handlers={"charge": sloppy})


def test_a_failed_run_raises_what_client_wait_raises(flow_runner: FlowRunner, db_url: str) -> None:
    with pytest.raises(RunFailedError) as caught:
        flow_runner.run(shop, {"qty": 1})
    error = caught.value
    assert error.step_slug == "charge" and error.flow_slug == "shop"
    assert error.error_type == "RuntimeError"
    assert error.run is not None and error.run.status == "failed"
    assert error.run.step("charge").attempts == 2
    assert error.run.step("receipt").status == "cancelled"
    with Client(db_url) as client, pytest.raises(RunFailedError) as waited:
        client.wait(error.run.run_id, timeout=5)
    assert str(waited.value) == str(error)
    assert waited.value.error_message == error.error_message


def test_raise_on_failure_false_returns_the_failed_run(flow_runner: FlowRunner) -> None:
    run = flow_runner.run(shop, {"qty": 1}, raise_on_failure=False)
    assert run.status == "failed"
    assert run.failed_step is not None and run.failed_step.step_slug == "charge"
    assert run.failed_step.error_message is not None
    assert "payment provider" in run.failed_step.error_message


def test_invalid_input_is_refused_before_anything_runs(
    flow_runner: FlowRunner, db_url: str
) -> None:
    with pytest.raises(InvalidInputError, match="invalid input for flow 'shop'"):
        flow_runner.run(shop, {"qty": "many"}, handlers={"charge": fake_charge})
    assert runs_in(db_url) == 0


def test_a_slug_is_accepted_once_the_flow_was_given(flow_runner: FlowRunner) -> None:
    with pytest.raises(UnknownFlowError) as caught:
        flow_runner.run("shop", {"qty": 1})
    assert "flow 'shop' was not given to this flow runner" in str(caught.value)
    assert caught.value.hint and "flow_runner.deploy" in caught.value.hint
    results = flow_runner.deploy(shop)
    assert [r.action for r in results] == ["created"]
    run = flow_runner.run("shop", {"qty": 3}, handlers={"charge": fake_charge})
    assert run.output == {"receipt": "paid 30 for 30 (attempt 1)"}
    with pytest.raises(RunFailedError, match="payment provider"):  # fakes are per run
        flow_runner.run("shop", {"qty": 3})


def test_other_flows_are_served_too(flow_runner: FlowRunner, db_url: str) -> None:
    helper = Flow("shop_helper").step("hello", lambda input: f"hello {input['who']}")

    def charge_via_helper(price: int) -> str:  # waits for a run of another flow
        with Client(db_url) as client:
            started = client.start(helper, {"who": price})
            return str(client.wait(started.run_id, timeout=10).output)

    run = flow_runner.run(shop, {"qty": 1}, handlers={"charge": charge_via_helper}, flows=[helper])
    assert run.step("charge").output == "{'hello': 'hello 10'}"


def test_a_run_that_takes_too_long_times_out(flow_runner: FlowRunner) -> None:
    import time

    def slow(price: int) -> str:
        time.sleep(1.0)
        return "late"

    with pytest.raises(RunTimeoutError, match=r"did not finish within 0\.3 s"):
        flow_runner.run(shop, {"qty": 1}, handlers={"charge": slow}, timeout=0.3)


async def test_arun_in_an_async_test(flow_runner: FlowRunner) -> None:
    run = await flow_runner.arun(shop, {"qty": 4}, handlers={"charge": fake_charge})
    assert run.output == {"receipt": "paid 40 for 40 (attempt 1)"}
    with pytest.raises(ConfigurationError, match="inside a running event loop") as caught:
        flow_runner.run(shop, {"qty": 4})
    assert caught.value.hint and "await flow_runner.arun(" in caught.value.hint


def test_a_runner_without_clock_says_how_to_get_one(db_url: str) -> None:
    runner = FlowRunner(db_url)
    with pytest.raises(ConfigurationError, match="no test clock"):
        _ = runner.clock
    run = runner.run(shop, {"qty": 1}, handlers={"charge": fake_charge})
    assert run.status == "completed"
    runner.close()
