"""Shapes of flows, their checksums, reading them back, and readable differences."""

from __future__ import annotations

import hashlib
from decimal import Decimal

import pytest
from pydantic import ValidationError

from pgflow import Flow
from pgflow.shape import FlowShape, StepShape, checksum, diff, shape_of


def make_flow() -> Flow:
    flow = Flow("shop", max_attempts=9, timeout=5)
    flow.step("cart", lambda input: input)
    flow.step("pay", lambda cart: cart, depends_on=["cart"], if_={"cart": {"ok": True}})
    flow.map("ship", lambda item: item, array="pay", when_exhausted="skip", timeout=3)
    flow.step(
        "z",
        lambda ship, cart: 1,
        depends_on=["ship", "cart"],
        if_not={"cart": {"void": True}},
        when_unmet="fail",
    )
    return flow


def test_shape_lists_steps_in_definition_order_with_sorted_dependencies() -> None:
    assert shape_of(make_flow()) == FlowShape(
        flow_slug="shop",
        steps=(
            StepShape(step_slug="cart"),
            StepShape(
                step_slug="pay", deps=("cart",), required_input_pattern={"cart": {"ok": True}}
            ),
            StepShape(step_slug="ship", step_type="map", deps=("pay",), when_exhausted="skip"),
            StepShape(
                step_slug="z",
                deps=("cart", "ship"),
                forbidden_input_pattern={"cart": {"void": True}},
                when_unmet="fail",
            ),
        ),
    )


def test_the_json_form_has_exactly_the_contract_keys() -> None:
    value = shape_of(make_flow()).to_json()
    assert set(value) == {"version", "flow_slug", "steps"}
    assert value["version"] == 1
    assert set(value["steps"][0]) == {
        "step_slug",
        "step_type",
        "deps",
        "required_input_pattern",
        "forbidden_input_pattern",
        "when_unmet",
        "when_exhausted",
    }


def test_checksum_is_the_sha256_of_the_utf8_canonical_text() -> None:
    shape = shape_of(make_flow())
    assert shape.checksum == hashlib.sha256(shape.canonical.encode()).hexdigest()
    assert checksum("é") == hashlib.sha256("é".encode()).hexdigest()


def test_runtime_options_are_not_part_of_the_shape() -> None:
    tuned = Flow("shop", max_attempts=1, base_delay=7).step("cart", lambda input: input)
    plain = Flow("shop").step("cart", lambda input: input, timeout=99, start_delay=3)
    assert shape_of(tuned).checksum == shape_of(plain).checksum


def test_unsorted_deps_in_a_hand_built_shape_are_sorted_like_sql_sorts_them() -> None:
    a = FlowShape(flow_slug="f", steps=(StepShape(step_slug="s", deps=("b", "a", "B")),))
    assert a.to_json()["steps"][0]["deps"] == ["B", "a", "b"]  # C collation: bytes


def test_from_json_text_keeps_numbers_exact_so_the_checksum_survives() -> None:
    shape = FlowShape(
        flow_slug="f",
        steps=(StepShape(step_slug="s", required_input_pattern={"n": Decimal("1.50")}),),
    )
    again = FlowShape.from_json(shape.canonical)
    assert again.canonical == shape.canonical
    assert again.steps[0].required_input_pattern == {"n": Decimal("1.50")}


@pytest.mark.parametrize(
    "value",
    [
        '{"version": 2, "flow_slug": "f", "steps": []}',
        '{"version": 1, "flow_slug": "f", "steps": [{"step_slug": "s", "step_type": "loop"}]}',
        '{"version": 1, "flow_slug": "f", "steps": [], "extra": 1}',
    ],
)
def test_from_json_refuses_what_is_not_a_version_1_shape(value: str) -> None:
    with pytest.raises(ValidationError):
        FlowShape.from_json(value)


def test_diff_is_none_for_equal_shapes() -> None:
    assert diff(shape_of(make_flow()), shape_of(make_flow())) is None


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            {"flow_slug": "other"},
            "the flow is 'shop' (v1) in the old and 'other' (v1) in the new",
        ),
        (
            {"steps": 3},
            "step 4 ('z') is missing in the new",
        ),
        (
            {"rename": "zz"},
            "step 4 is 'z' in the old and 'zz' in the new",
        ),
        (
            {"deps": ("cart",)},
            'step \'z\': deps is ["cart", "ship"] in the old and ["cart"] in the new',
        ),
        (
            {"pattern": {"cart": {"ok": False}}},
            (
                "step 'z': required_input_pattern is null in the old and "
                '{"cart": {"ok": false}} in the new'
            ),
        ),
    ],
)
def test_diff_names_the_first_difference(change: dict[str, object], expected: str) -> None:
    old = shape_of(make_flow())
    steps = list(old.steps)
    last = steps[-1]
    if "steps" in change:
        steps = steps[:3]
    if "rename" in change:
        steps[-1] = last.model_copy(update={"step_slug": change["rename"]})
    if "deps" in change:
        steps[-1] = last.model_copy(update={"deps": change["deps"]})
    if "pattern" in change:
        steps[-1] = last.model_copy(update={"required_input_pattern": change["pattern"]})
    new = old.model_copy(
        update={"steps": tuple(steps), "flow_slug": change.get("flow_slug", "shop")}
    )
    assert diff(old, new, names=("old", "new")) == expected


def test_diff_reports_a_step_only_the_second_shape_has() -> None:
    short = FlowShape(flow_slug="f", steps=(StepShape(step_slug="a"),))
    long = FlowShape(flow_slug="f", steps=(StepShape(step_slug="a"), StepShape(step_slug="b")))
    assert diff(short, long) == "step 2 ('b') is missing in the first"
