"""Definition-time validation: every rule, with a message naming flow, step and the fix."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from pydantic import BaseModel

from pgflow import Context, Flow
from pgflow.dsl.slugs import MAX_SLUG_LENGTH, RESERVED_SLUGS, is_valid_slug
from pgflow.errors import DefinitionError, InvalidSlugError, TypeMismatchError


class Input(BaseModel):
    url: str


class Page(BaseModel):
    url: str


class Unvalidatable:
    """pydantic cannot build a schema for this."""


def base() -> Flow:
    return Flow("site", input=Input).step("fetch", lambda input: Page(url=input.url))


def check(build: Callable[[], object], error: type[Exception], *parts: str) -> DefinitionError:
    with pytest.raises(error) as caught:
        build()
    value = caught.value
    assert isinstance(value, DefinitionError)
    text = str(value)
    for part in parts:
        assert part in text, f"{part!r} not in {text!r}"
    assert value.hint, "every definition error carries a hint"
    return value


# --- slugs -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("slug", "problem"),
    [
        ("", "must not be empty"),
        ("a" * (MAX_SLUG_LENGTH + 1), "the limit is 128"),
        ("1abc", "must start with a letter"),
        ("_private", "must not start or end with '_'"),
        ("trailing_", "must not start or end with '_'"),
        ("_", "must not start or end with '_'"),
        ("with-dash", "only letters, digits and '_'"),
        ("spa ce", "only letters, digits and '_'"),
        ("żółć", "only letters, digits and '_'"),
        ("run", "reserved word"),
        ("input", "reserved word"),
        ("x'; drop table t; --", "only letters, digits and '_'"),
        (42, "must be a str"),
    ],
)
def test_invalid_flow_and_step_slugs_are_refused(slug: Any, problem: str) -> None:
    flow_error = check(lambda: Flow(slug), InvalidSlugError, "invalid flow slug", problem)
    assert flow_error.flow_slug == str(slug)
    step_error = check(
        lambda: Flow("f").step(slug, lambda: 1),
        InvalidSlugError,
        "invalid step slug",
        "in flow 'f'",
        problem,
    )
    assert (step_error.flow_slug, step_error.step_slug) == ("f", str(slug))


def test_valid_slug_edge_cases() -> None:
    assert is_valid_slug("a") and is_valid_slug("A" * MAX_SLUG_LENGTH) and is_valid_slug("Run")
    assert is_valid_slug("a_b") and is_valid_slug("a__b") and is_valid_slug("x1")
    assert not is_valid_slug("_") and not is_valid_slug("_a") and not is_valid_slug("a_")
    assert RESERVED_SLUGS == {"run", "input"}


def test_a_step_named_after_a_lambda_needs_an_explicit_slug() -> None:
    check(lambda: Flow("f").step(None, lambda: 1), InvalidSlugError, "'<lambda>'")


def test_duplicate_step_slug() -> None:
    check(
        lambda: base().step("fetch", lambda input: 1),
        DefinitionError,
        "step 'fetch' of flow 'site'",
        "already defined",
        "another slug",
    )


def test_step_slugs_must_differ_in_more_than_letter_case() -> None:
    error = check(
        lambda: base().step("Fetch", lambda input: 1),
        DefinitionError,
        "step 'Fetch' of flow 'site'",
        "step 'fetch' is already defined",
        "more than letter case",
    )
    assert (error.flow_slug, error.step_slug) == ("site", "Fetch")
    Flow("fetch").step("fetch", lambda input: 1)  # a step may share its flow's slug


# --- dependencies ------------------------------------------------------------------------


def test_unknown_dependency_lists_the_steps_defined_so_far() -> None:
    check(
        lambda: base().step("use", lambda fetchh: 1, depends_on=["fetchh"]),
        DefinitionError,
        "step 'use' of flow 'site'",
        "depends on 'fetchh'",
        "(steps: 'fetch')",
    )


def test_a_step_cannot_depend_on_itself_or_a_later_step() -> None:
    check(lambda: Flow("f").step("a", lambda a: 1, depends_on=["a"]), DefinitionError, "'a'")


def test_a_handler_that_is_not_a_step_of_this_flow() -> None:
    def stray() -> None: ...

    check(
        lambda: base().step("use", lambda stray: 1, depends_on=[stray]),
        DefinitionError,
        "handler 'stray' is not a step of flow 'site'",
    )


def test_a_handler_used_by_two_steps_is_ambiguous() -> None:
    def twice(input: Any) -> int:
        return 1

    flow = Flow("f").step("a", twice).step("b", twice)
    check(lambda: flow.step("c", lambda a: 1, depends_on=[twice]), DefinitionError, "several")


def test_depends_on_must_be_a_list() -> None:
    check(lambda: base().step("x", lambda: 1, depends_on=42), DefinitionError, "must be a list")


def test_map_with_two_dependencies() -> None:
    flow = base().array("a", lambda: [1]).array("b", lambda: [2])
    check(
        lambda: flow.map("m", lambda x: x, array="a", depends_on=["b"]),
        DefinitionError,
        "step 'm' of flow 'site'",
        "at most one dependency",
    )


def test_root_map_whose_input_model_is_not_a_list() -> None:
    check(
        lambda: Flow("f", input=Input).map("m", lambda x: x),
        DefinitionError,
        "step 'm' of flow 'f'",
        "input model Input is not a list",
    )


def test_map_over_a_step_whose_output_is_not_a_list() -> None:
    def single() -> int:
        return 1

    check(
        lambda: Flow("f").step("one", single).map("m", lambda x: x, array="one"),
        TypeMismatchError,
        "maps over step 'one', whose output (-> int) is not a list",
    )


def test_array_step_annotated_with_a_non_list_return() -> None:
    def scalar() -> str:
        return ""

    check(lambda: Flow("f").array("a", scalar), DefinitionError, "must return a list")


# --- parameters --------------------------------------------------------------------------


def test_a_parameter_that_binds_nothing() -> None:
    error = check(
        lambda: base().step("use", lambda fetch, extra: 1, depends_on=["fetch"]),
        DefinitionError,
        "step 'use' of flow 'site'",
        "parameter 'extra' binds nothing",
        "depends_on: 'fetch'",
    )
    assert error.step_slug == "use"


def test_an_unannotated_ctx_parameter_gets_a_hint_to_annotate_it() -> None:
    check(lambda: Flow("f").step("s", lambda ctx: 1), DefinitionError, "ctx: Context")


def test_a_parameter_named_like_the_array_of_a_map_binds_nothing() -> None:
    flow = Flow("f").array("items", lambda: [1])
    check(
        lambda: flow.map("m", lambda x, items: x, array="items"),
        DefinitionError,
        "parameter 'items' binds nothing",
    )


def test_a_dependency_the_handler_cannot_receive() -> None:
    check(
        lambda: base().step("use", lambda: 1, depends_on=["fetch"]),
        DefinitionError,
        "cannot receive dependency 'fetch'",
        "'**_'",
    )


def test_kwargs_receives_dependencies_no_parameter_names() -> None:
    flow = base().step("use", lambda **deps: deps, depends_on=["fetch"])
    assert [b.source for b in flow.get_step("use").parameters] == ["extra"]


def test_a_map_handler_without_an_element_parameter() -> None:
    def only_context(ctx: Context) -> int:
        return 1

    check(
        lambda: Flow("f").map("m", only_context),
        DefinitionError,
        "needs a parameter for the array element",
    )


def test_positional_only_parameters_are_refused() -> None:
    def positional(input: Any, /) -> int:
        return 1

    check(lambda: Flow("f").step("p", positional), DefinitionError, "positional-only")


def test_an_annotation_that_cannot_be_resolved() -> None:
    def broken(input: NotDefinedAnywhere) -> int:  # type: ignore[name-defined]  # noqa: F821
        return 1

    check(lambda: Flow("f").step("b", broken), DefinitionError, "cannot read the handler's")


def test_an_annotation_pydantic_cannot_validate() -> None:
    def odd(input: Unvalidatable) -> int:
        return 1

    check(lambda: Flow("f").step("o", odd), DefinitionError, "pydantic cannot validate")


def test_a_flow_input_type_pydantic_cannot_validate() -> None:
    check(lambda: Flow("f", input=Unvalidatable), DefinitionError, "flow 'f'", "the input")


def test_a_handler_that_is_not_callable() -> None:
    check(lambda: Flow("f").step("s", 42), DefinitionError, "must be callable")


def test_unknown_options_are_refused_with_the_allowed_names() -> None:
    check(
        lambda: Flow("f").step("s", lambda: 1, timout=3),
        DefinitionError,
        "unknown option 'timout'",
        "timeout",
    )
    check(lambda: Flow("f").step("s", lambda: 1, array="x"), DefinitionError, "'array'")


# --- options and conditions --------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "value", "problem"),
    [
        ("max_attempts", 0, "out of range"),
        ("max_attempts", 2.5, "must be an int"),
        ("max_attempts", True, "must be an int, not bool"),
        ("max_attempts", None, "must be an int, not NoneType"),
        ("base_delay", -1, "out of range"),
        ("base_delay", "1", "must be an int, not str"),
        ("timeout", 0, "out of range"),
        ("timeout", 2**31, "out of range"),
    ],
)
def test_flow_options_out_of_range_or_of_the_wrong_type(
    name: str, value: Any, problem: str
) -> None:
    check(lambda: Flow("f", **{name: value}), DefinitionError, "flow 'f'", name, problem)


@pytest.mark.parametrize(
    ("name", "value", "problem"),
    [
        ("max_attempts", 0, "out of range"),
        ("base_delay", -5, "out of range"),
        ("timeout", False, "must be an int, not bool"),
        ("start_delay", -1, "out of range"),
        ("start_delay", 1.0, "must be an int, not float"),
    ],
)
def test_step_options_out_of_range_or_of_the_wrong_type(
    name: str, value: Any, problem: str
) -> None:
    check(
        lambda: Flow("f").step("s", lambda: 1, **{name: value}),
        DefinitionError,
        "step 's' of flow 'f'",
        f"option {name}=",
        problem,
    )


def test_step_options_at_their_minimum_are_accepted() -> None:
    step = Flow("f").step("s", lambda: 1, max_attempts=1, base_delay=0, timeout=1, start_delay=0)
    assert step.get_step("s").max_attempts == 1


@pytest.mark.parametrize(
    ("pattern", "problem"),
    [
        ([1, 2], "must be a JSON object (a dict), not list"),
        ("{}", "not str"),
        ({1: "x"}, "has the key 1, which is not a str"),
        ({"a": {1, 2}}, "is a set, which is not a JSON value"),
        ({"a": float("nan")}, "which JSON cannot hold"),
        ({"a": ["\x00"]}, "NUL character"),
        ({"a": object()}, "is a object"),
    ],
)
def test_condition_patterns_must_be_json_objects(pattern: Any, problem: str) -> None:
    check(
        lambda: Flow("f").step("s", lambda: 1, if_=pattern),
        DefinitionError,
        "step 's' of flow 'f'",
        "if_",
        problem,
    )
    check(lambda: Flow("f").step("s", lambda: 1, if_not=pattern), DefinitionError, "if_not")


def test_condition_keys_of_a_dependent_step_must_be_dependencies() -> None:
    check(
        lambda: base().step("use", lambda fetch: 1, depends_on=["fetch"], if_={"url": "x"}),
        DefinitionError,
        "if_ tests 'url', which is not a dependency",
        "if_={'fetch': ...}",
    )


def test_patterns_are_copied_into_plain_dicts() -> None:
    pattern = {"fetch": {"tags": ("a", "b")}}
    step = base().step("use", lambda fetch: 1, depends_on=["fetch"], if_=pattern).get_step("use")
    assert step.required_input_pattern == {"fetch": {"tags": ["a", "b"]}}
    assert step.required_input_pattern is not pattern


@pytest.mark.parametrize("name", ["when_unmet", "when_exhausted"])
@pytest.mark.parametrize("value", ["skip_cascade", "SKIP", None, 1])
def test_modes_must_be_one_of_the_three(name: str, value: Any) -> None:
    check(
        lambda: Flow("f").step("s", lambda: 1, **{name: value}),
        DefinitionError,
        f"{name}={value!r} is not a valid mode",
        "'skip', 'skip-cascade', 'fail'",
    )


@pytest.mark.parametrize("mode", ["skip", "skip-cascade", "fail"])
def test_when_unmet_without_a_condition_is_refused(mode: str) -> None:
    check(
        lambda: base().step("s", lambda fetch: 1, depends_on=["fetch"], when_unmet=mode),
        DefinitionError,
        "step 's' of flow 'site'",
        f"when_unmet={mode!r} is given without a condition (if_ or if_not)",
        "add if_",
    )
    check(
        lambda: Flow("f", input=list[int]).map("m", lambda x: x, when_unmet=mode),
        DefinitionError,
        "without a condition",
    )


def test_when_unmet_with_either_condition_and_when_exhausted_alone_are_accepted() -> None:
    flow = base()
    flow.step("a", lambda fetch: 1, depends_on=["fetch"], if_={"fetch": {}}, when_unmet="fail")
    flow.step("b", lambda fetch: 1, depends_on=["fetch"], if_not={"fetch": {}}, when_unmet="fail")
    flow.step("c", lambda fetch: 1, depends_on=["fetch"], when_exhausted="skip-cascade")
    assert [s.when_unmet for s in flow.steps[1:]] == ["fail", "fail", "skip"]


def test_a_skippable_dependency_needs_a_default_or_optional_parameter() -> None:
    flow = base().step("maybe", lambda fetch: 1, depends_on=["fetch"], if_={"fetch": {"url": "x"}})

    def strict(maybe: int) -> int:
        return maybe

    check(
        lambda: flow.step("after", strict, depends_on=["maybe"]),
        DefinitionError,
        "dependency 'maybe' may be skipped",
        "give 'maybe' a default",
    )

    def with_optional(maybe: int | None) -> int:
        return 1

    flow.step("optional", with_optional, depends_on=["maybe"])
    flow.step("defaulted", lambda maybe=0: 1, depends_on=["maybe"])


def test_skip_cascade_and_fail_never_leave_a_dependency_missing() -> None:
    def strict(guarded: int) -> int:
        return guarded

    for mode in ("fail", "skip-cascade"):
        flow = base().step(
            "guarded", lambda fetch: 1, depends_on=["fetch"], if_={"fetch": {}}, when_unmet=mode
        )
        flow.step("after", strict, depends_on=["guarded"])


def test_when_exhausted_skip_makes_a_dependency_skippable() -> None:
    def strict(a: int) -> int:
        return a

    flow = Flow("g").step("a", lambda: 1, when_exhausted="skip")
    check(lambda: flow.step("b", strict, depends_on=["a"]), DefinitionError, "'a' may be skipped")
