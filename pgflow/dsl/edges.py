"""Checks across a step's incoming edges: received dependencies, condition keys, types."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pgflow.dsl.binding import EMPTY, ParameterBinding
from pgflow.dsl.compat import TypeSchema, items_of, mismatch, schema_of
from pgflow.dsl.step import StepDefinition
from pgflow.errors import TypeMismatchError


def check_received(step: StepDefinition, producers: Mapping[str, StepDefinition]) -> None:
    """Refuse a dependency the handler cannot receive, or a skippable one it cannot miss.

    Raises:
        DefinitionError: a single step's dependency has no parameter (and no ``**kwargs``),
            a map handler has no parameter for the element, or a dependency that may be
            skipped feeds a parameter with neither a default nor ``None`` allowed.
    """
    sources = {b.source for b in step.parameters}
    if step.step_type == "map" and "element" not in sources:
        raise step.where.error(
            "a map handler needs a parameter for the array element",
            hint="add a first parameter, e.g. def handler(item: str) -> ...",
        )
    named = {b.name: b for b in step.parameters if b.source == "dependency"}
    for slug in step.deps if step.step_type == "single" else ():
        if slug not in named and "extra" not in sources:
            raise step.where.error(
                f"the handler cannot receive dependency {slug!r}: no parameter is named {slug!r}",
                hint=f"add a parameter '{slug}' (or '**_' when the step only runs after it)",
            )
        if slug in named and producers[slug].may_be_skipped:
            _check_skippable(step, named[slug], producers[slug])


def _check_skippable(step: StepDefinition, binding: ParameterBinding, dep: StepDefinition) -> None:
    if binding.default is not EMPTY or binding.accepts_none:
        return
    raise step.where.error(
        f"dependency {dep.slug!r} may be skipped (when_unmet={dep.when_unmet!r}, "
        f"when_exhausted={dep.when_exhausted!r}), and then parameter {binding.name!r} "
        "gets no value",
        hint=f"give {binding.name!r} a default or annotate it as '... | None'",
    )


def check_pattern_keys(step: StepDefinition) -> None:
    """Refuse condition keys that can never be in a dependent single step's input.

    A dependent single step's input is ``{dep_slug: output}``, so a pattern key that is not
    a dependency makes ``if_`` never hold and ``if_not`` never apply.
    """
    if step.step_type != "single" or not step.deps:
        return
    for name, pattern in (
        ("if_", step.required_input_pattern),
        ("if_not", step.forbidden_input_pattern),
    ):
        unknown = sorted(set(pattern or {}) - set(step.deps))
        if unknown:
            raise step.where.error(
                f"{name} tests {', '.join(map(repr, unknown))}, which is not a dependency; "
                "the step's input is {dependency_slug: output}",
                hint=f"key the pattern by dependency slug, e.g. {name}={{{step.deps[0]!r}: ...}}",
            )


def check_edges(
    step: StepDefinition,
    producers: Mapping[str, StepDefinition],
    input_schema: TypeSchema | None,
    map_source: TypeSchema | None,
) -> None:
    """Check each parameter's annotation accepts what its edge delivers.

    Args:
        step: the consuming step.
        producers: its dependencies by slug.
        input_schema: the flow input's serialization schema (None when unknown).
        map_source: for a map step, the schema of the array it maps over.

    Raises:
        TypeMismatchError: naming both ends, the types and the first incompatibility.
    """
    for binding in step.parameters:
        if binding.annotation is EMPTY or binding.source in ("context", "extra"):
            continue
        produced, origin = _produced(binding, producers, input_schema, map_source)
        consumer = schema_of(binding.annotation, "validation")
        problem = mismatch(produced, consumer)
        if problem is not None:
            raise _type_error(step, binding, origin, problem)


def _produced(
    binding: ParameterBinding,
    producers: Mapping[str, StepDefinition],
    input_schema: TypeSchema | None,
    map_source: TypeSchema | None,
) -> tuple[TypeSchema | None, str]:
    if binding.source == "dependency":
        producer = producers[binding.name]
        return producer.output_schema, f"the output of step {producer.slug!r}"
    if binding.source == "element":
        element = items_of(map_source) if map_source is not None else None
        return element, "one element of the mapped array"
    return input_schema, "the flow input"


def _type_error(
    step: StepDefinition, binding: ParameterBinding, origin: str, problem: str
) -> TypeMismatchError:
    annotation = type_name(binding.annotation)
    return TypeMismatchError(
        f"{step.where}: parameter '{binding.name}: {annotation}' cannot accept {origin}: {problem}",
        hint=f"annotate '{binding.name}' with a type that accepts {origin}, "
        "or change the producing annotation",
        flow_slug=step.flow_slug,
        step_slug=step.slug,
        parameter=binding.name,
    )


def type_name(annotation: Any) -> str:
    """A short readable name for an annotation (``Page``, ``list[int]``)."""
    if isinstance(annotation, type):
        return annotation.__name__
    return repr(annotation).replace("typing.", "")
