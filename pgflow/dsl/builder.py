"""Turn what the user wrote (``StepSpec``) into a checked :class:`StepDefinition`."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from pgflow.dsl._unset import UNSET, Unset, or_default
from pgflow.dsl.binding import EMPTY, BindingPlan, adapter_for, bind_parameters, signature_of
from pgflow.dsl.compat import TypeSchema, items_of, schema_of
from pgflow.dsl.edges import check_edges, check_pattern_keys, check_received, type_name
from pgflow.dsl.limits import check_concurrency, check_rate_limit
from pgflow.dsl.options import (
    DEFAULT_START_DELAY,
    DEFAULT_WHEN_EXHAUSTED,
    DEFAULT_WHEN_UNMET,
    Where,
    check_mode,
    check_options,
    check_pattern,
)
from pgflow.dsl.slugs import check_slug
from pgflow.dsl.step import StepDefinition
from pgflow.errors import TypeMismatchError

if TYPE_CHECKING:
    from pgflow.dsl.flow import Flow

StepKind = Literal["step", "map", "array"]


@dataclass(frozen=True, slots=True)
class StepSpec:
    """A step as the user wrote it, before any check."""

    kind: StepKind
    slug: str | None
    handler: object
    depends_on: object = ()
    array: object = UNSET
    options: dict[str, object] = field(default_factory=dict)
    if_: object = UNSET
    if_not: object = UNSET
    when_unmet: object = UNSET
    when_exhausted: object = UNSET
    concurrency: object = None
    rate_limit: object = None


def define_step(spec: StepSpec, flow: Flow) -> StepDefinition:
    """Check ``spec`` against ``flow`` and build its :class:`StepDefinition`.

    Raises:
        DefinitionError: any definition rule is broken (see ``docs/dsl.md``).
        InvalidSlugError: the slug is invalid.
        TypeMismatchError: a parameter cannot accept what its edge delivers.
    """
    handler = _callable(spec.handler, flow, spec.slug)
    where = Where(flow.slug, _slug(spec, handler, flow))
    deps = _deps(spec, flow, where)
    step_type: Literal["single", "map"] = "map" if spec.kind == "map" else "single"
    signature = signature_of(handler, where)
    plan = BindingPlan(step_type, () if step_type == "map" else deps, flow.input_model)
    parameters = bind_parameters(signature, plan, where)
    options = check_options(where, **spec.options)
    required = check_pattern(where, "if_", spec.if_)
    forbidden = check_pattern(where, "if_not", spec.if_not)
    when_unmet = check_mode(where, "when_unmet", spec.when_unmet, DEFAULT_WHEN_UNMET)
    _check_unmet_has_condition(spec, required, forbidden, where)
    returns = signature.return_annotation
    step = StepDefinition(
        flow_slug=flow.slug,
        slug=where.step_slug or "",
        handler=handler,
        is_async=_is_async(handler),
        step_type=step_type,
        deps=deps,
        returns_array=spec.kind == "array",
        max_attempts=or_default(options.max_attempts, flow.max_attempts),
        base_delay=or_default(options.base_delay, flow.base_delay),
        timeout=or_default(options.timeout, flow.timeout),
        start_delay=or_default(options.start_delay, DEFAULT_START_DELAY),
        options=options,
        required_input_pattern=required,
        forbidden_input_pattern=forbidden,
        when_unmet=when_unmet,
        when_exhausted=check_mode(
            where, "when_exhausted", spec.when_exhausted, DEFAULT_WHEN_EXHAUSTED
        ),
        parameters=parameters,
        return_annotation=returns,
        output_adapter=adapter_for(returns, where, "the return value"),
        output_schema=_output_schema(spec.kind, returns, where),
        spec=spec,
        concurrency=check_concurrency(where, spec.concurrency, flow.input_json_schema),
        rate_limit=check_rate_limit(where, spec.rate_limit, flow.input_json_schema),
    )
    _check_step(step, flow)
    return step


def _check_step(step: StepDefinition, flow: Flow) -> None:
    producers = {slug: flow.get_step(slug) for slug in step.deps}
    check_received(step, producers)
    check_pattern_keys(step)
    source = _map_source(step, flow, producers)
    check_edges(step, producers, flow.input_schema, source)


def _check_unmet_has_condition(
    spec: StepSpec, required: object, forbidden: object, where: Where
) -> None:
    """``when_unmet`` says what happens when a condition does not hold: without ``if_`` or
    ``if_not`` it can never apply, so (as pgflow does) it is refused. ``when_exhausted``
    needs no condition."""
    if not isinstance(spec.when_unmet, Unset) and required is None and forbidden is None:
        raise where.error(
            f"when_unmet={spec.when_unmet!r} is given without a condition (if_ or if_not)",
            hint="add if_={...} or if_not={...}, or remove when_unmet",
        )


def _callable(handler: object, flow: Flow, slug: str | None) -> Callable[..., Any]:
    if callable(handler):
        return handler
    where = Where(flow.slug, slug)
    raise where.error(
        f"the handler must be callable, not {type(handler).__name__}",
        hint="pass a function: flow.step('slug', my_function, ...)",
    )


def _slug(spec: StepSpec, handler: Callable[..., Any], flow: Flow) -> str:
    slug = spec.slug if spec.slug is not None else getattr(handler, "__name__", None)
    if slug is None:
        raise Where(flow.slug).error(
            f"cannot name a step after {handler!r}: it has no __name__",
            hint="pass the slug explicitly, e.g. flow.step('fetch', handler)",
        )
    slug = check_slug(slug, kind="step", flow_slug=flow.slug)
    if flow.has_step(slug):
        raise Where(flow.slug, slug).error(
            "a step with this slug is already defined",
            hint="give this step another slug, e.g. @flow.step(slug='other_name')",
        )
    other = next((s.slug for s in flow.steps if s.slug.lower() == slug.lower()), None)
    if other is not None:
        raise Where(flow.slug, slug).error(
            f"step {other!r} is already defined; step slugs must differ in more than letter case",
            hint="give this step a slug that differs from the others in more than letter case",
        )
    return slug


def _deps(spec: StepSpec, flow: Flow, where: Where) -> tuple[str, ...]:
    refs = [*_as_list(spec.depends_on, where)]
    if spec.array is not None and not isinstance(spec.array, Unset):
        refs.insert(0, spec.array)  # None, like omitting it, maps over the flow input
    deps = tuple(dict.fromkeys(_dep_slug(ref, flow, where) for ref in refs))
    if spec.kind == "map" and len(deps) > 1:
        raise where.error(
            f"a map step has at most one dependency, got {', '.join(map(repr, deps))}",
            hint="map over one step's output (array='slug'); combine several in a step before",
        )
    return deps


def _as_list(depends_on: object, where: Where) -> Iterable[object]:
    if isinstance(depends_on, str) or callable(depends_on):
        return [depends_on]
    if isinstance(depends_on, list | tuple):
        return depends_on
    raise where.error(
        f"depends_on must be a list, not {type(depends_on).__name__}",
        hint="write depends_on=['other_step'] (slugs or decorated handlers)",
    )


def _dep_slug(ref: object, flow: Flow, where: Where) -> str:
    slug = ref.slug if isinstance(ref, StepDefinition) else ref
    if callable(slug):
        slug = flow.slug_of(slug, where)
    if not isinstance(slug, str) or not flow.has_step(slug):
        known = ", ".join(repr(s.slug) for s in flow.steps) or "none yet"
        raise where.error(
            f"depends on {slug!r}, which is not a step defined before it (steps: {known})",
            hint="define that step first, or fix the name in depends_on / array",
        )
    return slug


def _map_source(
    step: StepDefinition, flow: Flow, producers: dict[str, StepDefinition]
) -> TypeSchema | None:
    if step.step_type != "map":
        return None
    if not step.deps:
        if flow.input_schema is not None and items_of(flow.input_schema) is None:
            raise step.where.error(
                f"a root map step maps over the flow input, but the flow's input model "
                f"{type_name(flow.input_model)} is not a list",
                hint="give the flow a list input (e.g. input=list[str]) or map over a step",
            )
        return flow.input_schema
    producer = producers[step.deps[0]]
    if producer.output_schema is not None and items_of(producer.output_schema) is None:
        raise TypeMismatchError(
            f"{step.where}: a map step maps over step {producer.slug!r}, whose output "
            f"(-> {type_name(producer.return_annotation)}) is not a list",
            hint=f"make {producer.slug!r} return a list (annotate it list[...])",
            flow_slug=step.flow_slug,
            step_slug=step.slug,
        )
    return producer.output_schema


def _output_schema(kind: StepKind, returns: Any, where: Where) -> TypeSchema | None:
    item = Any if returns is EMPTY else returns
    if kind == "map":
        return schema_of(list[item], "serialization")  # type: ignore[valid-type]
    schema = None if returns is EMPTY else schema_of(returns, "serialization")
    if kind == "array" and schema is not None and items_of(schema) is None:
        raise where.error(
            f"an array step must return a list, but it is annotated -> {returns!r}",
            hint="annotate the return type as list[...] or use @flow.step",
        )
    return schema if kind == "step" else schema or schema_of(list[Any], "serialization")


def _is_async(handler: Callable[..., Any]) -> bool:
    call = getattr(handler, "__call__", None)  # noqa: B004 - callable objects
    return inspect.iscoroutinefunction(handler) or inspect.iscoroutinefunction(call)
