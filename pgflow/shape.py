"""A flow's shape (its identity), its canonical JSON text and its SHA-256 checksum.

The shape (version 1) is the JSON value::

    {"version": 1, "flow_slug": "...", "steps": [
      {"step_slug": "...", "step_type": "single" | "map", "deps": [sorted slugs],
       "required_input_pattern": {...} | null, "forbidden_input_pattern": {...} | null,
       "when_unmet": "...", "when_exhausted": "..."}, ...]}

Its canonical text is exactly what Postgres prints for that value as ``jsonb::text``, so
Python (offline) and SQL (``pgflow.flow_checksum``) compute the same checksum. Runtime
options are tunables and stay out of the shape.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict

from pgflow.dsl.options import DEFAULT_WHEN_EXHAUSTED, DEFAULT_WHEN_UNMET, WhenMode

if TYPE_CHECKING:
    from pgflow.dsl.flow import Flow

__all__ = ["FlowShape", "StepShape", "canonical_json", "checksum", "diff", "shape_of"]

SHAPE_VERSION: Literal[1] = 1
_STEP_FIELDS = (
    "step_type",
    "deps",
    "required_input_pattern",
    "forbidden_input_pattern",
    "when_unmet",
    "when_exhausted",
)
# Postgres' escape_json(): these escapes, other control characters as \u00xx (lower-case
# hex), everything else (DEL and non-ASCII included) as is.
_ESCAPES = {i: f"\\u{i:04x}" for i in range(0x20)} | {
    ord("\b"): "\\b",
    ord("\f"): "\\f",
    ord("\n"): "\\n",
    ord("\r"): "\\r",
    ord("\t"): "\\t",
    ord('"'): '\\"',
    ord("\\"): "\\\\",
}


class StepShape(BaseModel):
    """The identity of one step."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    step_slug: str
    step_type: Literal["single", "map"] = "single"
    deps: tuple[str, ...] = ()
    required_input_pattern: dict[str, Any] | None = None
    forbidden_input_pattern: dict[str, Any] | None = None
    when_unmet: WhenMode = DEFAULT_WHEN_UNMET
    when_exhausted: WhenMode = DEFAULT_WHEN_EXHAUSTED


class FlowShape(BaseModel):
    """The identity of a flow: its slug and its steps in definition order."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    version: Literal[1] = SHAPE_VERSION
    flow_slug: str
    steps: tuple[StepShape, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """The shape as a plain JSON value (dependencies sorted, as SQL sorts them)."""
        steps = [
            step.model_dump(mode="python") | {"deps": sorted(step.deps)} for step in self.steps
        ]
        return {"version": self.version, "flow_slug": self.flow_slug, "steps": steps}

    @property
    def canonical(self) -> str:
        """The canonical text: what Postgres prints for this shape as ``jsonb::text``."""
        return canonical_json(self.to_json())

    @property
    def checksum(self) -> str:
        """The lower-case hex SHA-256 of the canonical text (equals SQL ``flow_checksum``)."""
        return checksum(self.canonical)

    @classmethod
    def from_json(cls, value: str | Mapping[str, Any]) -> FlowShape:
        """Read a shape from JSON text (numbers kept exact) or from a decoded value.

        Raises:
            pydantic.ValidationError: it is not a version-1 shape.
        """
        if isinstance(value, str):
            value = json.loads(value, parse_float=Decimal)
        return cls.model_validate(value)


def shape_of(flow: Flow) -> FlowShape:
    """Return the shape of ``flow``."""
    steps = tuple(
        StepShape(
            step_slug=step.slug,
            step_type=step.step_type,
            deps=tuple(sorted(step.deps)),
            required_input_pattern=step.required_input_pattern,
            forbidden_input_pattern=step.forbidden_input_pattern,
            when_unmet=step.when_unmet,
            when_exhausted=step.when_exhausted,
        )
        for step in flow.steps
    )
    return FlowShape(flow_slug=flow.slug, steps=steps)


def checksum(canonical: str) -> str:
    """Return the lower-case hex SHA-256 of ``canonical`` encoded as UTF-8."""
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def canonical_json(value: Any) -> str:
    """Render a JSON value exactly as Postgres prints it as ``jsonb::text``.

    Object keys are sorted by (UTF-8 byte length, bytes); separators are ``", "`` and
    ``": "``; numbers print as Postgres ``numeric`` does (``1e2`` → ``100``, ``1.50`` stays
    ``1.50``, floats via their shortest ``repr``); strings use Postgres' JSON escapes.

    Args:
        value: None, bool, int, float, Decimal, str, list/tuple or a str-keyed mapping.

    Returns:
        The canonical text.

    Raises:
        ValueError: a value jsonb cannot hold (NaN, infinity, a NUL character, a lone
            surrogate, a non-str key).
        TypeError: a value that is not JSON.
    """
    parts: list[str] = []
    _write(value, parts)
    return "".join(parts)


def _write(value: Any, out: list[str]) -> None:
    if value is None:
        out.append("null")
    elif isinstance(value, bool):
        out.append("true" if value else "false")
    elif isinstance(value, int):
        out.append(str(value))
    elif isinstance(value, float | Decimal):
        out.append(_numeric(value))
    elif isinstance(value, str):
        out.append(_string(value))
    elif isinstance(value, list | tuple):
        _write_array(value, out)
    elif isinstance(value, Mapping):
        _write_object(value, out)
    else:
        raise TypeError(f"{type(value).__name__} is not a JSON value: {value!r}")


def _write_array(items: list[Any] | tuple[Any, ...], out: list[str]) -> None:
    out.append("[")
    for index, item in enumerate(items):
        if index:
            out.append(", ")
        _write(item, out)
    out.append("]")


def _write_object(mapping: Mapping[Any, Any], out: list[str]) -> None:
    if not all(isinstance(key, str) for key in mapping):
        raise ValueError(f"JSON object keys must be str: {list(mapping)!r}")
    out.append("{")
    for index, key in enumerate(sorted(mapping, key=_key_order)):
        if index:
            out.append(", ")
        out.append(_string(key))
        out.append(": ")
        _write(mapping[key], out)
    out.append("}")


def _key_order(key: str) -> tuple[int, bytes]:
    # jsonb orders object keys by length first, then bytewise (lengthCompareJsonbString).
    raw = _utf8(key)
    return len(raw), raw


def _numeric(number: float | Decimal) -> str:
    exact = Decimal(repr(number)) if isinstance(number, float) else number
    if not exact.is_finite():
        raise ValueError(f"{number!r} is not a JSON number")
    if exact.is_zero():
        exact = exact.copy_abs()  # numeric has no negative zero
    return format(exact, "f")  # plain notation with the scale kept, as numeric_out prints


def _string(text: str) -> str:
    if "\x00" in text:
        raise ValueError("jsonb cannot hold the NUL character (\\u0000)")
    _utf8(text)
    return '"' + text.translate(_ESCAPES) + '"'


def _utf8(text: str) -> bytes:
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError(f"{text!r} is not valid Unicode (lone surrogate)") from exc


def diff(a: FlowShape, b: FlowShape, names: tuple[str, str] = ("first", "second")) -> str | None:
    """Describe the first difference between two shapes, or return None if they are equal.

    Args:
        a: one shape.
        b: the other.
        names: how to call ``a`` and ``b`` in the sentence (e.g. ``("deployed", "new")``).
    """
    if a.canonical == b.canonical:
        return None
    if a.flow_slug != b.flow_slug or a.version != b.version:
        return (
            f"the flow is {a.flow_slug!r} (v{a.version}) in the {names[0]} and "
            f"{b.flow_slug!r} (v{b.version}) in the {names[1]}"
        )
    for index in range(max(len(a.steps), len(b.steps))):
        problem = _step_diff(index, a.steps, b.steps, names)
        if problem is not None:
            return problem
    return None


def _step_diff(
    index: int, a: tuple[StepShape, ...], b: tuple[StepShape, ...], names: tuple[str, str]
) -> str | None:
    if index >= len(a) or index >= len(b):
        present, absent = (b, names[0]) if index >= len(a) else (a, names[1])
        return f"step {index + 1} ({present[index].step_slug!r}) is missing in the {absent}"
    sa, sb = a[index], b[index]
    if sa.step_slug != sb.step_slug:
        first, second = sa.step_slug, sb.step_slug
        return f"step {index + 1} is {first!r} in the {names[0]} and {second!r} in the {names[1]}"
    left, right = sa.model_dump(), sb.model_dump()
    for field in _STEP_FIELDS:
        lv, rv = canonical_json(_sorted(left[field])), canonical_json(_sorted(right[field]))
        if lv != rv:
            where = f"step {sa.step_slug!r}: {field}"
            return f"{where} is {lv} in the {names[0]} and {rv} in the {names[1]}"
    return None


def _sorted(value: Any) -> Any:
    return sorted(value) if isinstance(value, tuple) else value
