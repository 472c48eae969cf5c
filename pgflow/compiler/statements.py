"""The compiler's intermediate form: the ``pgflow.*`` calls that define a flow.

Each :class:`Call` holds only the arguments that differ from the SQL defaults, so the
rendered SQL names exactly what the user chose.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pgflow._duration import interval_literal
from pgflow.dsl._unset import Unset
from pgflow.dsl.flow import Flow
from pgflow.dsl.options import (
    DEFAULT_START_DELAY,
    DEFAULT_WHEN_EXHAUSTED,
    DEFAULT_WHEN_UNMET,
    FLOW_DEFAULTS,
)
from pgflow.dsl.step import StepDefinition
from pgflow.errors import DefinitionError
from pgflow.shape import FlowShape, canonical_json

FunctionName = Literal[
    "create_flow", "add_step", "delete_flow_and_data", "set_schedules", "set_limits"
]


@dataclass(frozen=True, slots=True)
class TextArray:
    """A ``text[]`` value, rendered as ``ARRAY['a', 'b']``."""

    items: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Jsonb:
    """A ``jsonb`` value holding canonical JSON text, rendered as ``CAST('…' AS JSONB)``."""

    text: str


SqlValue = str | int | TextArray | Jsonb


@dataclass(frozen=True, slots=True)
class Call:
    """One ``SELECT pgflow.<function>(args..., name => value, ...)`` statement."""

    function: FunctionName
    args: tuple[SqlValue, ...]
    kwargs: tuple[tuple[str, SqlValue], ...] = ()


def flow_calls(flow: Flow, shape: FlowShape) -> tuple[Call, ...]:
    """Return the calls that define ``flow``: ``create_flow``, one ``add_step`` per step,
    then ``set_limits`` when the flow has limits and ``set_schedules`` when it has
    schedules (runtime configuration, outside the shape)."""
    calls = (create_flow_call(flow, shape), *(add_step_call(step) for step in flow.steps))
    limits = (limits_call(flow),) if flow.limits else ()
    schedules = (schedules_call(flow),) if flow.schedules else ()
    return (*calls, *limits, *schedules)


def limits_call(flow: Flow) -> Call:
    """``set_limits`` with the flow's concurrency and rate limits (``[]`` removes them)."""
    entries = [limit.to_json() for limit in flow.limits]
    return Call("set_limits", (flow.slug, Jsonb(canonical_json(entries))))


def schedules_call(flow: Flow) -> Call:
    """``set_schedules`` with the flow's schedules (``[]`` removes them all)."""
    entries = [schedule.to_json() for schedule in flow.schedules]
    return Call("set_schedules", (flow.slug, Jsonb(canonical_json(entries))))


def create_flow_call(flow: Flow, shape: FlowShape) -> Call:
    """``create_flow`` with non-default options, the tunables ``retention``, ``priority``
    and ``input_schema`` when the flow has them, the declared shape and its checksum."""
    options = flow.options
    given = {
        "max_attempts": options.max_attempts,
        "base_delay": options.base_delay,
        "timeout": options.timeout,
    }
    kwargs: list[tuple[str, SqlValue]] = [
        (name, value)
        for name, value in given.items()
        if not isinstance(value, Unset) and value != FLOW_DEFAULTS[name]
    ]
    if flow.retention is not None:
        kwargs.append(("retention", interval_literal(flow.retention)))
    if flow.priority:
        kwargs.append(("priority", flow.priority))
    schema = flow.input_json_schema
    if schema is not None:
        kwargs.append(("input_schema", Jsonb(_schema_json(flow, schema))))
    kwargs += [("shape", Jsonb(shape.canonical)), ("checksum", shape.checksum)]
    return Call("create_flow", (flow.slug,), tuple(kwargs))


def _schema_json(flow: Flow, schema: dict[str, object]) -> str:
    try:
        return canonical_json(schema)
    except (TypeError, ValueError) as exc:  # e.g. a NaN default in the input model
        raise DefinitionError(
            f"flow {flow.slug!r}: the JSON Schema of its input model cannot be stored: {exc}",
            hint="give the input model's fields JSON-compatible defaults and examples",
            flow_slug=flow.slug,
        ) from exc


def add_step_call(step: StepDefinition) -> Call:
    """``add_step`` with only the arguments that differ from the SQL defaults."""
    kwargs: list[tuple[str, SqlValue]] = []
    if step.deps:
        kwargs.append(("deps_slugs", TextArray(step.deps)))
    options = step.options
    for name, value in (
        ("max_attempts", options.max_attempts),
        ("base_delay", options.base_delay),
        ("timeout", options.timeout),
    ):
        if not isinstance(value, Unset):  # step options default to NULL: inherit the flow's
            kwargs.append((name, value))
    if not isinstance(options.start_delay, Unset) and options.start_delay != DEFAULT_START_DELAY:
        kwargs.append(("start_delay", options.start_delay))
    kwargs += _condition_kwargs(step)
    return Call("add_step", (step.flow_slug, step.slug), tuple(kwargs))


def _condition_kwargs(step: StepDefinition) -> list[tuple[str, SqlValue]]:
    kwargs: list[tuple[str, SqlValue]] = []
    if step.step_type != "single":
        kwargs.append(("step_type", step.step_type))
    if step.required_input_pattern is not None:
        kwargs.append(
            ("required_input_pattern", Jsonb(canonical_json(step.required_input_pattern)))
        )
    if step.forbidden_input_pattern is not None:
        kwargs.append(
            ("forbidden_input_pattern", Jsonb(canonical_json(step.forbidden_input_pattern)))
        )
    if step.when_unmet != DEFAULT_WHEN_UNMET:
        kwargs.append(("when_unmet", step.when_unmet))
    if step.when_exhausted != DEFAULT_WHEN_EXHAUSTED:
        kwargs.append(("when_exhausted", step.when_exhausted))
    return kwargs
