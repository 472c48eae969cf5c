"""Rebuild the flows that a sequence of pgflow definition calls defines."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from pydantic import ValidationError

from pgflow.compiler.calls import FoundCall
from pgflow.dsl.options import FLOW_DEFAULTS
from pgflow.errors import CompileError
from pgflow.shape import FlowShape, StepShape

_STEP_OPTIONS = ("max_attempts", "base_delay", "timeout", "start_delay")


@dataclass(frozen=True, slots=True)
class DefinedFlow:
    """A flow an earlier migration defines.

    Attributes:
        flow_slug: its slug.
        shape: its shape (declared with ``shape =>``, or rebuilt from ``add_step`` calls).
        checksum: the shape's checksum.
        path: the file whose ``create_flow`` (or first ``add_step``) defines it.
        line: the line of that call.
        options: the flow's options after every call (max_attempts, base_delay, timeout;
            the SQL defaults where a call left them out), as Postgres would hold them.
        step_options: each step's options after every call (None: not set).
        last_path: the last file with a call for this flow (where its options come from).
        input_schema: the ``input_schema`` the last ``create_flow`` gave (JSON), or None.
        retention: the ``retention`` the last ``create_flow`` gave (interval text), or None.
        priority: the ``priority`` the last ``create_flow`` gave (0 when it gave none).
    """

    flow_slug: str
    shape: FlowShape
    checksum: str
    path: str
    line: int
    options: dict[str, int] = field(default_factory=dict)
    step_options: dict[str, dict[str, int | None]] = field(default_factory=dict)
    last_path: str = ""
    input_schema: Any = None
    retention: str | None = None
    priority: int = 0


@dataclass(slots=True)
class _Pending:
    slug: str
    path: str
    line: int
    declared: FlowShape | None = None
    steps: dict[str, StepShape] = field(default_factory=dict)
    options: dict[str, int] = field(default_factory=lambda: dict(FLOW_DEFAULTS))
    step_options: dict[str, dict[str, int | None]] = field(default_factory=dict)
    last_path: str = ""
    input_schema: Any = None
    retention: str | None = None
    priority: int = 0


class FlowCollector:
    """Apply calls in order, the way Postgres would, to learn each slug's shape."""

    def __init__(self) -> None:
        self._flows: dict[str, _Pending] = {}

    def add(self, call: FoundCall) -> None:
        """Apply one call (re-applying an existing definition changes nothing).

        Raises:
            CompileError: the call's arguments do not describe a valid definition.
        """
        try:
            slug = _text(call.arguments.get("flow_slug"), "flow_slug")
            if call.function == "delete_flow_and_data":
                self._flows.pop(slug, None)
            elif call.function == "create_flow":
                self._create(slug, call)
            else:
                self._add_step(slug, call)
            if slug in self._flows:
                self._flows[slug].last_path = call.path
        except (TypeError, ValueError, ValidationError) as exc:
            raise CompileError(
                f"{call.path} line {call.line}: cannot read pgflow.{call.function}: {exc}",
                hint="fix or remove that call; pgflow compile refuses to guess",
                path=call.path,
                line=call.line,
            ) from exc

    def flows(self) -> dict[str, DefinedFlow]:
        """The flows defined so far, by slug."""
        result: dict[str, DefinedFlow] = {}
        for slug, pending in self._flows.items():
            shape = pending.declared or FlowShape(
                flow_slug=slug, steps=tuple(pending.steps.values())
            )
            result[slug] = DefinedFlow(
                slug,
                shape,
                shape.checksum,
                pending.path,
                pending.line,
                dict(pending.options),
                {step: dict(values) for step, values in pending.step_options.items()},
                pending.last_path,
                pending.input_schema,
                pending.retention,
                pending.priority,
            )
        return result

    def _create(self, slug: str, call: FoundCall) -> None:
        if slug not in self._flows:
            shape = call.arguments.get("shape")
            declared = None if shape is None else FlowShape.from_json(_text(shape, "shape"))
            self._flows[slug] = _Pending(slug, call.path, call.line, declared)
        # like create_flow: every call sets the options, NULL meaning the default
        pending = self._flows[slug]
        pending.options = {
            name: default if (given := _option(call.arguments.get(name))) is None else given
            for name, default in FLOW_DEFAULTS.items()
        }
        retention = call.arguments.get("retention")
        pending.input_schema = _schema(call.arguments.get("input_schema"))
        pending.retention = retention if isinstance(retention, str) else None
        pending.priority = _option(call.arguments.get("priority")) or 0

    def _add_step(self, slug: str, call: FoundCall) -> None:
        pending = self._flows.setdefault(slug, _Pending(slug, call.path, call.line))
        step = _step_shape(call.arguments)
        pending.steps.setdefault(step.step_slug, step)
        pending.step_options[step.step_slug] = {  # like add_step: NULL means "not set"
            name: _option(call.arguments.get(name)) for name in _STEP_OPTIONS
        }


def _step_shape(arguments: dict[str, Any]) -> StepShape:
    values = {
        "step_slug": _text(arguments.get("step_slug"), "step_slug"),
        "deps": tuple(sorted(_deps(arguments.get("deps_slugs")))),
        "required_input_pattern": _json(arguments.get("required_input_pattern")),
        "forbidden_input_pattern": _json(arguments.get("forbidden_input_pattern")),
    }
    for name in ("step_type", "when_unmet", "when_exhausted"):
        if arguments.get(name) is not None:
            values[name] = arguments[name]
    return StepShape.model_validate(values)


def _option(value: Any) -> int | None:
    """An option's value as Postgres would store it; ``'60'`` is 60. Options only inform
    (``pgflow diff``), so a value that is no integer is read as not given rather than
    stopping the read of a migration whose shape is fine (None: not given)."""
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value


def _schema(value: Any) -> Any:
    """A stored input schema (JSON text); like options, one that cannot be read is None."""
    try:
        return json.loads(value) if isinstance(value, str) else None
    except ValueError:
        return None


def _text(value: Any, name: str) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a string literal, got {value!r}")
    return value


def _deps(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return value
    if isinstance(value, str) and value.startswith("{") and value.endswith("}"):
        inner = value[1:-1].strip()
        return [item.strip().strip('"') for item in inner.split(",")] if inner else []
    raise ValueError(f"deps_slugs must be a text array, got {value!r}")


def _json(value: Any) -> Any:
    if value is None:
        return None
    try:
        return json.loads(_text(value, "pattern"), parse_float=Decimal)
    except json.JSONDecodeError as exc:
        raise ValueError(f"a pattern is not valid JSON: {exc}") from exc
