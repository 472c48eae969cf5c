"""The Flow builder: decorators, fluent calls, options and what the worker reads."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel

from pgflow import UNSET, Context, Flow, StepDefinition
from pgflow.errors import DefinitionError, InvalidInputError


class Input(BaseModel):
    url: str


class Page(BaseModel):
    url: str
    words: int


def fetch(input: Input) -> Page:
    return Page(url=input.url, words=3)


def count(fetch: Page) -> int:
    return fetch.words


def test_decorated_handlers_stay_plain_callables() -> None:
    flow = Flow("site", input=Input)

    @flow.step()
    def website(input: Input) -> Page:
        return Page(url=input.url, words=2)

    @flow.step
    async def bare(input: Input) -> str:
        return input.url

    assert website(Input(url="u")) == Page(url="u", words=2)
    assert website.__name__ == "website"
    assert [s.slug for s in flow.steps] == ["website", "bare"]
    assert not hasattr(website, "slug")  # nothing is attached to the function


def test_the_fluent_form_mutates_and_returns_the_same_flow() -> None:
    flow = Flow("site", input=Input)
    returned = flow.step("fetch", fetch).step("count", count, depends_on=["fetch"])
    assert returned is flow
    assert [s.slug for s in flow.steps] == ["fetch", "count"]


def test_decorators_and_fluent_calls_mix_and_depends_on_takes_handlers() -> None:
    flow = Flow("site", input=Input).step("fetch", fetch)

    @flow.step(depends_on=[fetch])
    def words(fetch: Page) -> int:
        return fetch.words

    flow.step("twice", lambda words: words * 2, depends_on=words)
    assert flow.get_step("twice").deps == ("words",)
    assert flow.get_step("words").deps == ("fetch",)


def test_depends_on_accepts_a_step_definition() -> None:
    flow = Flow("site", input=Input).step("fetch", fetch)
    flow.step("count", count, depends_on=[flow.get_step("fetch")])
    assert flow.get_step("count").deps == ("fetch",)


def test_duplicate_dependencies_are_listed_once_in_the_given_order() -> None:
    flow = Flow("f").step("b", lambda: 1).step("a", lambda: 2)
    flow.step("c", lambda a, b: 3, depends_on=["b", "a", "b"])
    assert flow.get_step("c").deps == ("b", "a")


def test_step_definition_carries_what_the_worker_needs() -> None:
    flow = Flow("site", input=Input, max_attempts=4, base_delay=2, timeout=50)

    @flow.step(timeout=7, start_delay=3)
    async def website(input: Input, ctx: Context) -> Page:
        return Page(url=input.url, words=1)

    step = flow.get_step("website")
    assert isinstance(step, StepDefinition)
    assert (step.slug, step.flow_slug, step.handler, step.is_async) == (
        "website",
        "site",
        website,
        True,
    )
    assert (step.step_type, step.deps, step.returns_array) == ("single", (), False)
    assert (step.max_attempts, step.base_delay, step.timeout, step.start_delay) == (4, 2, 7, 3)
    assert step.options.max_attempts is UNSET and step.options.timeout == 7


def test_flow_options_default_to_the_sql_defaults() -> None:
    flow = Flow("f")
    assert (flow.max_attempts, flow.base_delay, flow.timeout) == (3, 1, 60)
    assert flow.options.max_attempts is UNSET
    assert flow.input_model is None
    step = flow.step("s", lambda: 1).get_step("s")
    assert (step.max_attempts, step.base_delay, step.timeout, step.start_delay) == (3, 1, 60, 0)


def test_map_over_a_dependency_and_over_the_flow_input() -> None:
    flow = Flow("f", input=list[str])

    @flow.map()
    def lengths(item: str) -> int:
        return len(item)

    @flow.array(depends_on=[lengths])
    def evens(lengths: list[int]) -> list[int]:
        return [n for n in lengths if n % 2 == 0]

    @flow.map(array=evens, max_attempts=1)
    async def halve(n: int, ctx: Context) -> float:
        return n / 2

    assert [(s.slug, s.step_type, s.deps, s.returns_array) for s in flow.steps] == [
        ("lengths", "map", (), False),
        ("evens", "single", ("lengths",), True),
        ("halve", "map", ("evens",), False),
    ]
    assert flow.get_step("halve").is_async and flow.get_step("halve").max_attempts == 1


def test_map_accepts_its_one_dependency_through_depends_on_too() -> None:
    flow = Flow("f").array("items", lambda: [1, 2])
    flow.map("each", lambda x: x, depends_on=["items"])
    assert flow.get_step("each").deps == ("items",)


def test_callable_objects_and_async_call_methods_are_handlers() -> None:
    class Handler:
        async def __call__(self, input: Any) -> int:
            return 1

    flow = Flow("f").step("obj", Handler())
    assert flow.get_step("obj").is_async


def test_get_step_of_an_unknown_slug_says_which_steps_exist() -> None:
    flow = Flow("f").step("a", lambda: 1)
    with pytest.raises(DefinitionError, match=r"flow 'f' has no such step \(steps: a\)"):
        flow.get_step("zzz")


def test_dump_input_validates_and_serialises_the_run_input() -> None:
    flow = Flow("site", input=Input)
    assert flow.dump_input(Input(url="u")) == {"url": "u"}
    assert flow.dump_input({"url": "v"}) == {"url": "v"}
    with pytest.raises(InvalidInputError, match="invalid input for flow 'site'"):
        flow.dump_input({"nope": 1})
    assert Flow("any").dump_input({"x": [1]}) == {"x": [1]}


def test_repr_names_the_slug_and_steps() -> None:
    assert repr(Flow("f").step("a", lambda: 1)) == "<Flow 'f' steps=['a']>"
