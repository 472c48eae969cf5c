"""Durations ("30d"), Flow(retention=...), the stored input schema and its checks (no database)."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from pydantic import BaseModel, Field

from pgflow import DefinitionError, Flow, InvalidInputError
from pgflow._duration import interval_literal, parse_duration
from pgflow._input_schema import MAX_LISTED, check_input
from pgflow.compiler import compile_flow


@pytest.mark.parametrize(
    ("text", "expected", "literal"),
    [
        ("45s", timedelta(seconds=45), "45 seconds"),
        ("90m", timedelta(minutes=90), "90 minutes"),
        ("12h", timedelta(hours=12), "12 hours"),
        ("48h", timedelta(days=2), "2 days"),
        ("30d", timedelta(days=30), "30 days"),
        ("2w", timedelta(days=14), "14 days"),
        (" 7d ", timedelta(days=7), "7 days"),
    ],
)
def test_durations_parse_and_render_as_intervals(
    text: str, expected: timedelta, literal: str
) -> None:
    assert parse_duration(text) == expected
    assert interval_literal(parse_duration(text)) == literal


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("30", "expected a whole number followed by a unit"),
        ("30 days", "expected a whole number followed by a unit"),
        ("1.5h", "expected a whole number followed by a unit"),
        ("-5d", "expected a whole number followed by a unit"),
        ("30D", "expected a whole number followed by a unit"),
        ("1y", "expected a whole number followed by a unit"),
        ("", "expected a whole number followed by a unit"),
        ("0s", "it must be longer than 0"),
        ("999999999w", "it is longer than 1000 years"),
        ("1234567890d", "expected a whole number followed by a unit"),
        (30, "expected a whole number followed by a unit"),
        (None, "expected a whole number followed by a unit"),
    ],
)
def test_anything_else_is_refused(value: object, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        parse_duration(value)


def test_flow_retention_is_checked_at_definition_time() -> None:
    assert Flow("f", retention="30d").retention == timedelta(days=30)
    assert Flow("g").retention is None
    with pytest.raises(DefinitionError) as caught:
        Flow("h", retention="a month")
    assert caught.value.message == (
        "flow 'h': retention 'a month' is not a valid duration: "
        "expected a whole number followed by a unit"
    )
    assert caught.value.hint is not None and '"30d"' in caught.value.hint


class Address(BaseModel):
    city: str


class Customer(BaseModel):
    name: str
    age: int = Field(ge=0)
    address: Address


def test_the_input_schema_is_a_tunable_compiled_with_the_flow() -> None:
    flow = Flow("customers", input=Customer, retention="2w").step("a", lambda input: 1)
    plain = Flow("customers").step("a", lambda input: 1)
    compiled, without = compile_flow(flow), compile_flow(plain)
    assert compiled.checksum == without.checksum  # not part of the shape
    create = dict(compiled.calls[0].kwargs)
    assert create["retention"] == "14 days"
    stored = json.loads(create["input_schema"].text)  # type: ignore[union-attr]
    assert stored == Customer.model_json_schema()
    assert "input_schema" not in dict(without.calls[0].kwargs)
    assert compile_flow(flow).sql == compiled.sql  # deterministic
    assert Flow("anything", input=object).input_json_schema is None


def _errors(value: object) -> list[tuple[str, str]]:
    schema = json.dumps(Customer.model_json_schema())
    with pytest.raises(InvalidInputError) as caught:
        check_input("customers", schema, value)
    return caught.value.errors


def test_every_error_is_listed_with_its_path() -> None:
    assert _errors({"age": -2, "address": {"city": 5}}) == [
        ("input", "'name' is a required property"),
        ("input.address.city", "5 is not of type 'string'"),
        ("input.age", "-2 is less than the minimum of 0"),
    ]
    schema = json.dumps({"type": "array", "items": {"type": "integer"}})
    with pytest.raises(InvalidInputError) as caught:
        check_input("nums", schema, ["x"] * 30)
    assert len(caught.value.errors) == 30
    assert f"... and {30 - MAX_LISTED} more" in caught.value.message
    assert caught.value.message.count("\n") == MAX_LISTED + 1


def test_valid_input_and_flows_without_a_schema_pass() -> None:
    check_input("customers", json.dumps(Customer.model_json_schema()),
                {"name": "a", "age": 1, "address": {"city": "x"}})  # fmt: skip
    check_input("plain", None, {"anything": [1, 2]})


def test_a_broken_stored_schema_is_a_definition_error() -> None:
    with pytest.raises(DefinitionError, match="not a valid JSON Schema") as caught:
        check_input("odd", json.dumps({"type": 5}), {})
    assert caught.value.hint is not None and "pgflow deploy" in caught.value.hint


def test_an_input_nested_deeper_than_python_goes_is_refused_cleanly() -> None:
    schema = json.dumps({"$defs": {"n": {"type": "array", "items": {"$ref": "#/$defs/n"}}},
                         "$ref": "#/$defs/n"})  # fmt: skip
    value: list[object] = []
    for _ in range(5000):
        value = [value]
    with pytest.raises(InvalidInputError, match="nested too deeply to validate"):
        check_input("deep", schema, value)
