"""Concurrency and rate limits in the DSL: validation at definition time, compiled SQL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

import pgflow
from pgflow import DefinitionError, Flow, Limit, RateLimit
from pgflow.compiler import compile_flow
from pgflow.compiler.scripts import read_compiled
from pgflow.dsl.limits import parse_rate


class Order(BaseModel):
    customer_id: str
    total: int


def step_with(**options: Any) -> Flow:
    flow = Flow("orders", input=Order)
    flow.step("charge", lambda input: 1, **options)
    return flow


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("100/min", (100, 60)),
        ("10/s", (10, 1)),
        ("5/30s", (5, 30)),
        ("1000 / hour", (1000, 3600)),
        ("2/days", (2, 86400)),
        ("3/2 days", (3, 172800)),
        ("7/Minutes", (7, 60)),
    ],
)
def test_rates_parse(text: str, expected: tuple[int, int]) -> None:
    assert parse_rate(text) == expected


@pytest.mark.parametrize(
    "text", ["100/fortnight", "100/ms", "100", "/min", "-1/min", "0/min", "1/0s", "1/367d", ""]
)
def test_malformed_rates_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match=r"is not a rate|is out of range"):
        parse_rate(text)


def test_limits_are_recorded_flow_first_then_steps_in_order() -> None:
    flow = Flow("orders", input=Order, concurrency=20)
    flow.step("charge", lambda input: 1, concurrency=Limit(5, key="customer_id"))
    flow.step("notify", lambda input: 1, rate_limit=RateLimit("100/min", key="customer_id"))
    flow.step("audit", lambda input: 1, concurrency=2, rate_limit="1/s")
    assert [limit.to_json() for limit in flow.limits] == [
        {"step": None, "kind": "concurrency", "max": 20, "per": None, "key": None},
        {"step": "charge", "kind": "concurrency", "max": 5, "per": None, "key": "customer_id"},
        {"step": "notify", "kind": "rate", "max": 100, "per": 60, "key": "customer_id"},
        {"step": "audit", "kind": "concurrency", "max": 2, "per": None, "key": None},
        {"step": "audit", "kind": "rate", "max": 1, "per": 1, "key": None},
    ]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"concurrency": 0}, "concurrency 0 is not a whole number from 1 to 1000000"),
        ({"concurrency": -3}, "concurrency -3 is not a whole number"),
        ({"concurrency": True}, "concurrency True is not a whole number"),
        ({"concurrency": 2.5}, "concurrency 2.5 is not a whole number"),
        ({"concurrency": Limit(0, key="customer_id")}, "concurrency 0 is not"),
        ({"concurrency": Limit(2, key="nope")}, "keyed by 'nope', which the flow input"),
        ({"concurrency": Limit(2, key="")}, "is not a field name"),
        ({"rate_limit": "100/fortnight"}, "rate_limit '100/fortnight' is not a rate"),
        ({"rate_limit": 100}, "rate_limit 100 is not a string"),
        ({"rate_limit": RateLimit("1/s", key="zip")}, "keyed by 'zip'"),
    ],
)
def test_bad_limits_are_definition_errors_naming_flow_and_step(
    options: dict[str, Any], message: str
) -> None:
    with pytest.raises(DefinitionError) as caught:
        step_with(**options)
    assert message in str(caught.value)
    assert "step 'charge' of flow 'orders'" in str(caught.value)
    assert caught.value.flow_slug == "orders" and caught.value.step_slug == "charge"
    assert caught.value.hint


def test_flow_level_limit_errors_name_the_flow() -> None:
    with pytest.raises(DefinitionError, match="flow 'orders': concurrency 0"):
        Flow("orders", concurrency=0)
    with pytest.raises(DefinitionError, match="the flow input is not an object"):
        Flow("orders", input=list[int], concurrency=Limit(2, key="x"))


def test_a_key_is_not_checked_when_the_flow_takes_any_json() -> None:
    flow = Flow("free", concurrency=Limit(3, key="tenant"))
    assert flow.limits[0].key == "tenant"


def test_limits_compile_to_one_set_limits_call_that_deploy_reads_back(tmp_path: Path) -> None:
    flow = step_with(concurrency=3, rate_limit="10/s")
    sql = compile_flow(flow).sql
    assert sql.count("pgflow.set_limits(") == 1
    assert sql.index("pgflow.add_step(") < sql.index("pgflow.set_limits(")
    assert "set_limits" not in compile_flow(step_with()).sql  # none: no call
    path = tmp_path / "orders.sql"
    path.write_text(sql, encoding="utf-8")
    [script] = read_compiled(str(path))
    assert any("set_limits" in statement for statement in script.statements)
    assert list(script.flows) == ["orders"]


def test_limits_are_not_part_of_the_shape() -> None:
    limited = compile_flow(step_with(concurrency=3, rate_limit="10/s"))
    plain = compile_flow(step_with())
    assert limited.checksum == plain.checksum


def test_the_public_names() -> None:
    assert pgflow.Limit is Limit and pgflow.RateLimit is RateLimit
    assert Limit.__module__ == "pgflow"
