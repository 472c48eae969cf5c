"""Types across edges: a consumer's annotation must accept the producer's return annotation."""

from __future__ import annotations

import enum
from datetime import date, datetime
from typing import Annotated, Any, Literal, Optional

import pytest
from pydantic import BaseModel, ConfigDict, Field, PositiveInt
from typing_extensions import TypedDict  # pydantic needs it on Python < 3.12

from pgflow import Flow
from pgflow.dsl.compat import items_of, mismatch, schema_of
from pgflow.errors import TypeMismatchError


class Page(BaseModel):
    url: str
    words: int = 0
    children: list[Page] = []


class Looser(BaseModel):
    url: str
    words: float
    children: list[Looser] = []


class NeedsTitle(BaseModel):
    url: str
    title: str


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: str


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


class Partial(TypedDict, total=False):
    url: str


ACCEPTED: list[tuple[Any, Any]] = [
    (int, int),
    (int, float),
    (int, int | None),
    (int, Any),
    (Any, int),
    (bool, bool),
    (Page, Page),
    (Page, Looser),  # structurally: every Page output validates as a Looser
    (Strict, Page | None),
    (list[Page], list[Looser]),
    (tuple[int, int], list[float]),
    (tuple[int, str], tuple[int, str]),
    (dict[str, int], dict[str, float]),
    (datetime, str),
    (Literal["a", "b"], str),
    (Literal["a"], Literal["a", "b"]),
    (Color, Color),
    (Color, Literal["red", "blue"]),
    (Annotated[int, Field(gt=5)], PositiveInt),
    (None, Optional[int]),  # noqa: UP045 - the typing spelling on purpose
    (set[int], list[int]),
]

REFUSED: list[tuple[Any, Any, str]] = [
    (float, int, "number is given where integer is expected"),
    (int, str, "integer is given where string is expected"),
    (int | None, int, "null is given where integer is expected"),
    (bool, int, "boolean is given where integer is expected"),
    (None, int, "null is given"),
    (Looser, Page, "at .words: number is given where integer is expected"),
    (Page, NeedsTitle, "field 'title' is required but may be missing"),
    (Page, Strict, "field 'words' may be given but extra fields are forbidden"),
    (dict[str, int], Page, "field 'url' is required but may be missing"),
    (Partial, Strict, "field 'url' is required but may be missing"),
    (str, datetime, "string is given where date-time is expected"),
    (date, datetime, "date is given where date-time is expected"),
    (str, Literal["a"], "any string is given where only one of 'a' is accepted"),
    (Literal["c"], Literal["a", "b"], "'c' is not accepted"),
    (int, PositiveInt, "may break the bound minimum"),
    (list[int], tuple[int, int], "may break the bound minItems"),
    (list[float], list[int], "at [0]: number is given"),
    (Color, Literal["red"], "'blue' is not accepted"),
    (str, int | None, "string is none of integer | null"),
]


@pytest.mark.parametrize(("producer", "consumer"), ACCEPTED)
def test_compatible_types_are_accepted(producer: Any, consumer: Any) -> None:
    assert mismatch(schema_of(producer, "serialization"), schema_of(consumer, "validation")) is None


@pytest.mark.parametrize(("producer", "consumer", "reason"), REFUSED)
def test_incompatible_types_are_refused_with_the_reason(
    producer: Any, consumer: Any, reason: str
) -> None:
    problem = mismatch(schema_of(producer, "serialization"), schema_of(consumer, "validation"))
    assert problem is not None and reason in problem


def test_recursive_models_terminate() -> None:
    assert mismatch(schema_of(Page, "serialization"), schema_of(Page, "validation")) is None


def test_types_without_a_json_schema_are_not_judged() -> None:
    assert schema_of(type, "validation") is None
    assert mismatch(None, schema_of(int, "validation")) is None


def test_items_of_gives_the_element_schema_or_none_for_non_lists() -> None:
    element = items_of(schema_of(list[Page], "serialization"))  # type: ignore[arg-type]
    assert element is not None
    assert mismatch(element, schema_of(Page, "validation")) is None
    assert items_of(schema_of(Page, "serialization")) is None  # type: ignore[arg-type]
    assert items_of(schema_of(Optional[list[int]], "serialization")) is None  # type: ignore[arg-type]  # noqa: UP045
    assert items_of(schema_of(Any, "serialization")) is not None  # type: ignore[arg-type]


# --- through the DSL ---------------------------------------------------------------------


def produce_float() -> float:
    return 1.5


def produce_pages() -> list[Page]:
    return []


def test_a_dependency_edge_with_incompatible_types_fails_at_definition() -> None:
    def consume(produce: int) -> None: ...

    flow = Flow("f").step("produce", produce_float)
    with pytest.raises(TypeMismatchError) as caught:
        flow.step("consume", consume, depends_on=["produce"])
    error = caught.value
    assert str(error).startswith(
        "step 'consume' of flow 'f': parameter 'produce: int' cannot accept the output of "
        "step 'produce': number is given where integer is expected"
    )
    assert error.hint and (error.flow_slug, error.step_slug, error.parameter) == (
        "f",
        "consume",
        "produce",
    )


def test_a_flow_input_edge_is_checked_against_the_input_model() -> None:
    def consume(input: NeedsTitle) -> None: ...

    with pytest.raises(TypeMismatchError, match="cannot accept the flow input: field 'title'"):
        Flow("f", input=Page).step("consume", consume)


def test_a_map_element_edge_is_checked_against_the_item_type() -> None:
    def each(page: NeedsTitle) -> None: ...

    flow = Flow("f").array("pages", produce_pages)
    with pytest.raises(TypeMismatchError, match="one element of the mapped array"):
        flow.map("each", each, array="pages")
    flow.map("ok", lambda page: page, array="pages")

    def typed(page: Looser) -> str:
        return page.url

    flow.map("typed", typed, array="pages")


def test_the_output_of_a_map_step_is_a_list_of_its_results() -> None:
    def each(page: Page) -> int:
        return page.words

    def total(each: list[int]) -> int:
        return sum(each)

    def wrong(each: int) -> int:
        return each

    flow = Flow("f").array("pages", produce_pages).map("each", each, array="pages")
    flow.step("total", total, depends_on=["each"])
    with pytest.raises(TypeMismatchError, match="array is given where integer is expected"):
        flow.step("wrong", wrong, depends_on=["each"])
