"""Condition patterns with values at the edges: refused with a DefinitionError or
normalised, never a crash (regressions found by tests/integration/test_dsl_properties.py)."""

from __future__ import annotations

import enum
from typing import Any

import pytest

from pgflow import DefinitionError, Flow
from pgflow.compiler import compile_flow


def nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {"leaf": True}
    for _ in range(depth):
        value = {"a": value}
    return value


@pytest.mark.parametrize(
    ("pattern", "problem"),
    [
        (nested(500), "if_ is nested more than 100 levels deep"),
        ({"n": 10**5000}, "if_['n'] is an integer with thousands of digits"),
    ],
    ids=["too-deep", "huge-int"],
)
def test_absurd_patterns_are_definition_errors(pattern: Any, problem: str) -> None:
    with pytest.raises(DefinitionError) as caught:
        Flow("f").step("s", lambda input: 1, if_=pattern)
    assert problem in str(caught.value)


def test_a_pattern_at_the_depth_limit_compiles() -> None:
    compile_flow(Flow("f").step("s", lambda input: 1, if_=nested(99)))


class Level(enum.IntEnum):
    HIGH = 3


class Shouty(str):
    def __str__(self) -> str:
        return "SHOUT"


class NumpyLike(float):
    def __repr__(self) -> str:
        return "np.float64(0.5)"


def test_scalar_subclasses_are_stored_as_plain_json() -> None:
    pattern = {"level": Level.HIGH, Shouty("key"): Shouty("value"), "score": NumpyLike(0.5)}
    flow = Flow("f").step("s", lambda input: 1, if_=pattern)
    sql = compile_flow(flow).sql
    assert '{"key": "value", "level": 3, "score": 0.5}' in sql
    stored = flow.steps[0].required_input_pattern
    assert stored is not None
    assert [type(v) for v in stored.values()] == [int, str, float]
