"""Handler binding at run time: ``build_arguments`` and ``dump_output`` as the worker calls them."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import BaseModel

from pgflow import Context, Flow
from pgflow.errors import InvalidInputError


class Input(BaseModel):
    url: str
    when: datetime | None = None


class Page(BaseModel):
    url: str
    words: list[str]


@dataclass
class Stats:
    count: int


CTX = Context(run_id=uuid.uuid4(), flow_slug="site", step_slug="x")


def site() -> Flow:
    flow = Flow("site", input=Input)

    @flow.step()
    def fetch(input: Input) -> Page:
        return Page(url=input.url, words=["a", "b"])

    @flow.step(depends_on=[fetch])
    def stats(fetch: Page, ctx: Context) -> Stats:
        return Stats(count=len(fetch.words))

    return flow


def test_root_step_receives_the_flow_input_parsed_into_its_model() -> None:
    step = site().get_step("fetch")
    given = {"url": "u", "when": "2026-01-02T03:04:05Z"}
    assert step.build_arguments(given, given, CTX) == {
        "input": Input(url="u", when=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC))
    }


def test_dependent_step_receives_dependency_outputs_and_the_context() -> None:
    step = site().get_step("stats")
    args = step.build_arguments({"fetch": {"url": "u", "words": ["x"]}}, {"url": "u"}, CTX)
    assert args == {"fetch": Page(url="u", words=["x"]), "ctx": CTX}
    assert step.handler(**args) == Stats(count=1)


def test_input_is_bound_by_name_or_by_the_flow_input_annotation() -> None:
    flow = site()

    def both(fetch: Page, input: Input, original: Input) -> int:
        return 1

    step = flow.step("both", both, depends_on=["fetch"]).get_step("both")
    args = step.build_arguments({"fetch": {"url": "u", "words": []}}, {"url": "in"}, CTX)
    assert args["input"] == args["original"] == Input(url="in")
    assert [b.source for b in step.parameters] == ["dependency", "input", "input"]


def test_a_map_handler_receives_one_element_and_may_ask_for_input_and_context() -> None:
    flow = Flow("nums", input=list[int])

    @flow.map()
    def double(n: int, input: list[int], ctx: Context) -> int:
        return n * 2

    step = flow.get_step("double")
    assert step.build_arguments("7", [7, 8], CTX) == {"n": 7, "input": [7, 8], "ctx": CTX}


def test_context_may_come_first_in_a_map_handler() -> None:
    flow = Flow("nums").array("items", lambda: [1])

    def annotated(ctx: Context, item: int) -> int:
        return item

    step = flow.map("n", annotated, array="items").get_step("n")
    assert step.build_arguments(5, None, CTX) == {"ctx": CTX, "item": 5}


def test_a_skipped_dependency_gets_the_default_then_none() -> None:
    flow = site().step("maybe", lambda fetch: 1, depends_on=["fetch"], if_={"fetch": {"url": "x"}})

    def with_default(maybe: int = 42) -> int:
        return maybe

    def optional(maybe: int | None) -> int:
        return maybe or 0

    flow.step("d", with_default, depends_on=["maybe"]).step("o", optional, depends_on=["maybe"])
    assert flow.get_step("d").build_arguments({}, {"url": "u"}, CTX) == {"maybe": 42}
    assert flow.get_step("o").build_arguments({}, {"url": "u"}, CTX) == {"maybe": None}
    assert flow.get_step("o").build_arguments({"maybe": 3}, {}, CTX) == {"maybe": 3}


def test_a_missing_dependency_without_default_or_none_is_a_clear_error() -> None:
    step = site().get_step("stats")
    with pytest.raises(InvalidInputError) as caught:
        step.build_arguments({}, {"url": "u"}, CTX)
    assert "step 'stats' of flow 'site': dependency 'fetch' was skipped" in str(caught.value)
    assert (caught.value.flow_slug, caught.value.step_slug) == ("site", "stats")


def test_kwargs_receive_the_outputs_of_dependencies_no_parameter_names() -> None:
    flow = site().step("s", lambda: [1], depends_on=[])

    def gather(fetch: Page, **rest: Any) -> int:
        return len(rest)

    step = flow.step("g", gather, depends_on=["fetch", "s"]).get_step("g")
    args = step.build_arguments({"fetch": {"url": "u", "words": []}, "s": [1]}, {}, CTX)
    assert args == {"fetch": Page(url="u", words=[]), "s": [1]}


def test_unannotated_parameters_receive_the_json_value_unchanged() -> None:
    flow = Flow("raw").step("a", lambda: {"k": [1]})
    step = flow.step("b", lambda a: a, depends_on=["a"]).get_step("b")
    value = {"k": [1]}
    assert step.build_arguments({"a": value}, None, CTX)["a"] is value


def test_a_value_that_does_not_parse_names_flow_step_and_parameter() -> None:
    step = site().get_step("stats")
    with pytest.raises(InvalidInputError) as caught:
        step.build_arguments({"fetch": {"url": 1}}, {}, CTX)
    message = str(caught.value)
    assert "step 'stats' of flow 'site': parameter 'fetch' (dependency)" in message
    assert "words: Field required" in message and "url: Input should be a valid string" in message


def test_dump_output_validates_and_returns_json_compatible_values() -> None:
    flow = site()
    assert flow.get_step("fetch").dump_output(Page(url="u", words=["a"])) == {
        "url": "u",
        "words": ["a"],
    }
    assert flow.get_step("fetch").dump_output({"url": "u", "words": ("a",)}) == {
        "url": "u",
        "words": ["a"],
    }
    assert flow.get_step("stats").dump_output(Stats(count=2)) == {"count": 2}


def test_dump_output_without_annotation_serialises_any_json_able_value() -> None:
    step = Flow("f").step("s", lambda: None).get_step("s")
    when = datetime(2026, 1, 1, tzinfo=UTC)
    assert step.dump_output({"at": when, "ids": (1, 2)}) == {
        "at": "2026-01-01T00:00:00Z",
        "ids": [1, 2],
    }


@pytest.mark.parametrize(
    ("value", "problem"),
    [({"url": "u"}, "does not match its return annotation"), (object(), "does not match")],
)
def test_dump_output_refuses_a_value_that_breaks_the_annotation(value: Any, problem: str) -> None:
    with pytest.raises(InvalidInputError) as caught:
        site().get_step("fetch").dump_output(value)
    assert "step 'fetch' of flow 'site'" in str(caught.value) and problem in str(caught.value)


def test_dump_output_refuses_what_cannot_become_json() -> None:
    step = Flow("f").step("s", lambda: None).get_step("s")
    with pytest.raises(InvalidInputError, match="step 's' of flow 'f'"):
        step.dump_output(object())


def test_array_steps_must_return_a_list() -> None:
    flow = Flow("f").array("a", lambda: [1])
    assert flow.get_step("a").dump_output((1, 2)) == [1, 2]
    with pytest.raises(InvalidInputError, match="must be a list, got dict"):
        flow.get_step("a").dump_output({"x": 1})


def test_a_map_step_dumps_one_element_result_against_its_annotation() -> None:
    def each(item: int) -> str:
        return str(item)

    step = Flow("m", input=list[int]).map("each", each).get_step("each")
    assert step.dump_output("3") == "3"
    with pytest.raises(InvalidInputError):
        step.dump_output(3)
