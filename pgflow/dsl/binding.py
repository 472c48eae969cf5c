"""Handler binding: which parameter receives what, decided once when a step is defined.

A handler parameter receives, in this order of precedence:

1. the :class:`~pgflow.dsl.context.Context`, when annotated ``Context``;
2. one array element, when it is the first other parameter of a ``map`` step;
3. a dependency's output, when named like that dependency;
4. the flow input, when named ``input`` or annotated with the flow's input model;
5. ``**kwargs`` receives the outputs of dependencies no parameter names.

Anything else binds nothing and is refused at definition time.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import TypeAdapter, ValidationError
from pydantic.errors import PydanticSchemaGenerationError, PydanticUserError

from pgflow.dsl.context import Context
from pgflow.dsl.options import Where
from pgflow.errors import InvalidInputError

Source = Literal["context", "element", "dependency", "input", "extra"]
EMPTY: Any = inspect.Parameter.empty
_ANY_ADAPTER: TypeAdapter[Any] = TypeAdapter(Any)


@dataclass(frozen=True, slots=True)
class ParameterBinding:
    """How one handler parameter is filled.

    Attributes:
        name: the parameter name (for ``extra``, the ``**kwargs`` name).
        source: what it receives.
        annotation: the resolved annotation, or ``inspect.Parameter.empty``.
        adapter: parses a JSON value into the annotated type.
        default: the parameter's default, or ``inspect.Parameter.empty``.
        accepts_none: whether ``None`` validates against the annotation.
    """

    name: str
    source: Source
    annotation: Any
    adapter: TypeAdapter[Any]
    default: Any = EMPTY
    accepts_none: bool = True


@dataclass(frozen=True, slots=True)
class BindingPlan:
    """What the definition-time checks need to know to bind a handler's parameters."""

    step_type: Literal["single", "map"]
    deps: tuple[str, ...]
    input_model: Any


def signature_of(handler: Callable[..., Any], where: Where) -> inspect.Signature:
    """Return the handler's signature with string annotations evaluated.

    Raises:
        DefinitionError: an annotation names something that cannot be resolved.
    """
    try:
        return inspect.signature(handler, eval_str=True)
    except (NameError, SyntaxError, TypeError) as exc:
        raise where.error(
            f"cannot read the handler's signature: {exc}",
            hint="define the types its annotations name at module level, before the handler",
        ) from exc


def adapter_for(annotation: Any, where: Where, what: str) -> TypeAdapter[Any]:
    """Return a pydantic ``TypeAdapter`` for ``annotation`` (``Any`` when empty).

    Raises:
        DefinitionError: pydantic cannot validate that type.
    """
    if annotation is EMPTY or annotation is Any:
        return _ANY_ADAPTER
    try:
        return TypeAdapter(annotation)
    except (PydanticSchemaGenerationError, PydanticUserError, TypeError) as exc:
        raise where.error(
            f"{what} is annotated {_name(annotation)!s}, a type pydantic cannot validate",
            hint="use a pydantic model, a dataclass or a builtin type such as dict or list",
        ) from exc


def bind_parameters(
    signature: inspect.Signature, plan: BindingPlan, where: Where
) -> tuple[ParameterBinding, ...]:
    """Decide, for each parameter, what it receives (see the module docstring).

    Raises:
        DefinitionError: a parameter binds nothing or is positional-only.
    """
    bindings: list[ParameterBinding] = []
    element_taken = plan.step_type != "map"
    for param in signature.parameters.values():
        if param.kind is param.VAR_POSITIONAL:
            continue
        source = _source(param, plan, element_taken, where)
        element_taken = element_taken or source == "element"
        bindings.append(_binding(param, source, where))
    return tuple(bindings)


def _source(
    param: inspect.Parameter, plan: BindingPlan, element_taken: bool, where: Where
) -> Source:
    if param.kind is param.POSITIONAL_ONLY:
        raise where.error(
            f"parameter {param.name!r} is positional-only; pgflow passes arguments by name",
            hint="remove the '/' from the handler's parameter list",
        )
    if param.annotation is Context:
        return "context"
    if param.kind is param.VAR_KEYWORD:
        return "extra"
    if not element_taken:
        return "element"
    if param.name in plan.deps:
        return "dependency"
    if param.name == "input" or _is_input_model(param.annotation, plan.input_model):
        return "input"
    raise where.error(f"parameter {param.name!r} binds nothing", hint=_unbound_hint(param, plan))


def _unbound_hint(param: inspect.Parameter, plan: BindingPlan) -> str:
    if param.name in ("ctx", "context"):
        return f"annotate it to receive the context: {param.name}: Context"
    deps = ", ".join(repr(d) for d in plan.deps) or "none"
    return (
        f"name it after a dependency (depends_on: {deps}) and list that step in depends_on, "
        "name it 'input' for the flow input, annotate it Context, or remove it"
    )


def _is_input_model(annotation: Any, input_model: Any) -> bool:
    if input_model is None or annotation is EMPTY:
        return False
    return bool(annotation is input_model or annotation == input_model)


def _binding(param: inspect.Parameter, source: Source, where: Where) -> ParameterBinding:
    what = f"parameter {param.name!r}"
    annotation = EMPTY if source == "extra" else param.annotation
    adapter = _ANY_ADAPTER if source == "context" else adapter_for(annotation, where, what)
    return ParameterBinding(
        name=param.name,
        source=source,
        annotation=annotation,
        adapter=adapter,
        default=param.default,
        accepts_none=_accepts_none(adapter),
    )


def _accepts_none(adapter: TypeAdapter[Any]) -> bool:
    try:
        adapter.validate_python(None)
    except ValidationError:
        return False
    return True


def build_arguments(
    bindings: tuple[ParameterBinding, ...],
    task_input: Any,
    flow_input: Any,
    context: Context,
    where: Where,
) -> dict[str, Any]:
    """Build a handler's keyword arguments from a claimed task (see ``StepDefinition``).

    Raises:
        InvalidInputError: a value does not parse into its parameter's type, or a skipped
            dependency's parameter has neither a default nor an annotation allowing None.
    """
    arguments: dict[str, Any] = {}
    for binding in bindings:
        if binding.source == "extra":
            arguments.update(_extras(bindings, task_input))
        elif binding.source == "context":
            arguments[binding.name] = context
        elif binding.source == "dependency":
            arguments[binding.name] = _dependency_value(binding, task_input, where)
        else:
            value = task_input if binding.source == "element" else flow_input
            arguments[binding.name] = parse(binding, value, where)
    return arguments


def _extras(bindings: tuple[ParameterBinding, ...], task_input: Any) -> dict[str, Any]:
    if not isinstance(task_input, Mapping):
        return {}
    named = {b.name for b in bindings if b.source == "dependency"}
    return {key: value for key, value in task_input.items() if key not in named}


def _dependency_value(binding: ParameterBinding, task_input: Any, where: Where) -> Any:
    if isinstance(task_input, Mapping) and binding.name in task_input:
        return parse(binding, task_input[binding.name], where)
    if binding.default is not EMPTY:
        return binding.default
    if binding.accepts_none:
        return None
    raise InvalidInputError(
        f"{where}: dependency {binding.name!r} was skipped, and parameter {binding.name!r} "
        "has no default and does not accept None",
        hint=f"give {binding.name!r} a default or annotate it as '... | None'",
        flow_slug=where.flow_slug,
        step_slug=where.step_slug,
    )


def parse(binding: ParameterBinding, value: Any, where: Where) -> Any:
    """Parse one JSON value into ``binding``'s annotated type.

    Raises:
        InvalidInputError: naming the flow, step and parameter, with pydantic's reasons.
    """
    if binding.adapter is _ANY_ADAPTER:
        return value
    try:
        return binding.adapter.validate_python(value)
    except ValidationError as exc:
        raise InvalidInputError(
            f"{where}: parameter {binding.name!r} ({binding.source}) got an invalid value: "
            f"{_errors(exc)}",
            hint="make the producing step's output match this parameter's annotation",
            flow_slug=where.flow_slug,
            step_slug=where.step_slug,
        ) from exc


def _errors(exc: ValidationError) -> str:
    parts = [f"{'.'.join(map(str, e['loc'])) or 'value'}: {e['msg']}" for e in exc.errors()[:3]]
    more = exc.error_count() - len(parts)
    return "; ".join(parts) + (f" (and {more} more)" if more > 0 else "")


def _name(annotation: Any) -> str:
    return getattr(annotation, "__name__", None) or repr(annotation)
