"""Type compatibility across edges, decided on pydantic's JSON schemas.

A consumer's annotation *accepts* a producer's return annotation when every JSON value the
producer can emit (pydantic's serialization schema of the producer type) is valid for the
consumer (pydantic's validation schema of the consumer type). :func:`mismatch` checks this
structurally: types (``integer`` fits ``number``), unions, enums and literals, string
formats and patterns, numeric and length bounds, array items and tuples, object fields,
required fields and ``extra="forbid"``, following ``$ref`` (recursive models included).

Where a schema says nothing (``Any``, an unannotated handler, a type without a JSON schema)
the check accepts: it reports only mismatches it can prove.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import TypeAdapter
from pydantic.errors import PydanticUserError

Schema = Mapping[str, Any] | bool
_NOTES = frozenset({"title", "description", "default", "examples", "deprecated", "readOnly"})
_JSON_TYPES: dict[type, str] = {
    bool: "boolean",
    int: "integer",
    float: "number",
    str: "string",
    list: "array",
}


@dataclass(frozen=True, slots=True)
class TypeSchema:
    """A JSON schema and the ``$defs`` its ``$ref`` entries point into."""

    schema: Schema
    defs: Mapping[str, Any]

    def resolved(self) -> Schema:
        """The schema with a top-level ``$ref`` replaced by its target."""
        return _resolve(self.schema, self.defs)


def schema_of(annotation: Any, mode: Literal["validation", "serialization"]) -> TypeSchema | None:
    """Return pydantic's JSON schema of ``annotation``, or ``None`` when it has none.

    Args:
        annotation: a type pydantic understands.
        mode: ``"validation"`` for what a consumer accepts, ``"serialization"`` for what a
            producer emits.
    """
    try:
        raw = TypeAdapter(annotation).json_schema(mode=mode)
    except (PydanticUserError, TypeError, ValueError):
        return None
    defs = raw.pop("$defs", {})
    return TypeSchema(raw, defs)


def items_of(array: TypeSchema) -> TypeSchema | None:
    """Return the element schema of an array schema, or ``None`` if it may not be an array.

    An unconstrained schema (``Any``) gives an unconstrained element.
    """
    schema = array.resolved()
    if schema is False:
        return None
    if schema is True or not _constraints(schema):
        return TypeSchema(True, array.defs)
    if schema.get("type") != "array":
        return None
    branches = [*schema.get("prefixItems", ()), schema.get("items", True)]
    element = branches[0] if len(branches) == 1 else {"anyOf": branches}
    return TypeSchema(element, array.defs)


def mismatch(producer: TypeSchema | None, consumer: TypeSchema | None) -> str | None:
    """Explain why ``consumer`` cannot accept every output of ``producer``, or return None."""
    if producer is None or consumer is None:
        return None
    return _Checker(producer.defs, consumer.defs).check(producer.schema, consumer.schema, "")


class _Checker:
    """Structural JSON-schema inclusion (producer ⊆ consumer) with coinductive $refs."""

    def __init__(self, producer_defs: Mapping[str, Any], consumer_defs: Mapping[str, Any]):
        self.pdefs = producer_defs
        self.cdefs = consumer_defs
        self.assumed: set[tuple[str, str]] = set()

    def check(self, p: Schema, c: Schema, path: str) -> str | None:
        refs = (_ref(p), _ref(c))
        if refs[0] and refs[1]:
            if refs in self.assumed:
                return None  # a recursive model: assume what is being proven
            self.assumed.add((refs[0], refs[1]))
        p, c = _resolve(p, self.pdefs), _resolve(c, self.cdefs)
        if c is True or (c is not False and not _constraints(c)):
            return None
        if p is True or (p is not False and not _constraints(p)):
            return None
        if p is False:
            return None
        if c is False:
            return f"{_at(path)}no value is accepted"
        return self._check_union(p, c, path)

    def _check_union(self, p: Mapping[str, Any], c: Mapping[str, Any], path: str) -> str | None:
        branches = p.get("anyOf") or p.get("oneOf")
        if branches:
            return _first(self.check(b, c, path) for b in branches)
        if isinstance(p.get("type"), list):
            return _first(self.check({**p, "type": t}, c, path) for t in p["type"])
        for part in c.get("allOf", ()):
            if (problem := self.check(p, part, path)) is not None:
                return problem
        options = c.get("anyOf") or c.get("oneOf")
        if options:
            if any(self.check(p, option, path) is None for option in options):
                return None
            return f"{_at(path)}{_describe(p)} is none of {_describe(c)}"
        return self._check_values(p, c, path)

    def _check_values(self, p: Mapping[str, Any], c: Mapping[str, Any], path: str) -> str | None:
        values = _enum(p)
        if values is not None:
            bad = [v for v in values if not _value_fits(v, c)]
            return f"{_at(path)}{bad[0]!r} is not accepted by {_describe(c)}" if bad else None
        if _enum(c) is not None:
            return f"{_at(path)}any {_describe(p)} is given where only {_describe(c)} is accepted"
        return self._check_type(p, c, path)

    def _check_type(self, p: Mapping[str, Any], c: Mapping[str, Any], path: str) -> str | None:
        ptype, ctype = p.get("type"), c.get("type")
        if ptype is None:
            return None
        if ctype is not None and ptype not in _widened(ctype):
            return f"{_at(path)}{_describe(p)} is given where {_describe(c)} is expected"
        if ptype == "string":
            return _string_problem(p, c, path)
        if ptype in ("integer", "number"):
            return _bounds_problem(p, c, path, "minimum", "maximum", exclusive=True)
        if ptype == "array":
            return self._array_problem(p, c, path)
        if ptype == "object":
            return self._object_problem(p, c, path)
        return None

    def _array_problem(self, p: Mapping[str, Any], c: Mapping[str, Any], path: str) -> str | None:
        pprefix, cprefix = list(p.get("prefixItems", ())), list(c.get("prefixItems", ()))
        pitems, citems = p.get("items", True), c.get("items", True)
        pairs = [(_nth(pprefix, i, pitems), cs) for i, cs in enumerate(cprefix)]
        pairs += [(ps, citems) for ps in pprefix[len(cprefix) :]] + [(pitems, citems)]
        for index, (ps, cs) in enumerate(pairs):
            if (problem := self.check(ps, cs, f"{path}[{index}]")) is not None:
                return problem
        return _bounds_problem(p, c, path, "minItems", "maxItems")

    def _object_problem(self, p: Mapping[str, Any], c: Mapping[str, Any], path: str) -> str | None:
        pprops: Mapping[str, Any] = p.get("properties", {})
        cprops: Mapping[str, Any] = c.get("properties", {})
        pextra = p.get("additionalProperties", not pprops)
        cextra = c.get("additionalProperties", True)
        sure = set(p.get("required", ())) | {k for k, s in pprops.items() if "default" in s}
        for name in c.get("required", ()):
            if name not in sure:
                return f"{_at(path)}field {name!r} is required but may be missing"
        pairs = [(pprops.get(k, pextra), cs, k) for k, cs in cprops.items()]
        pairs += [(ps, cextra, k) for k, ps in pprops.items() if k not in cprops]
        pairs += [(pextra, cextra, "*")]
        for ps, cs, key in pairs:
            if ps is False:
                continue
            if cs is False:
                what = "extra fields" if key == "*" else f"field {key!r}"
                return f"{_at(path)}{what} may be given but extra fields are forbidden"
            if (problem := self.check(ps, cs, f"{path}.{key}")) is not None:
                return problem
        return None


def _string_problem(p: Mapping[str, Any], c: Mapping[str, Any], path: str) -> str | None:
    for key in ("format", "pattern"):
        if key in c and p.get(key) != c[key]:
            return f"{_at(path)}{_describe(p)} is given where {_describe(c)} is expected"
    return _bounds_problem(p, c, path, "minLength", "maxLength")


def _bounds_problem(
    p: Mapping[str, Any],
    c: Mapping[str, Any],
    path: str,
    low: str,
    high: str,
    exclusive: bool = False,
) -> str | None:
    for key, sign in ((low, 1), (high, -1)):
        cbound = _bound(c, key, sign, exclusive)
        if cbound is None:
            continue
        pbound = _bound(p, key, sign, exclusive)
        if pbound is None or pbound < cbound:
            return f"{_at(path)}{_describe(p)} may break the bound {key} of {_describe(c)}"
    return None


def _bound(
    schema: Mapping[str, Any], key: str, sign: int, exclusive: bool
) -> tuple[float, int] | None:
    """The tightest bound ``key`` sets, as a key where larger means tighter."""
    bounds = [(sign * float(schema[key]), 0)] if key in schema else []
    ex_key = "exclusive" + key[0].upper() + key[1:]
    if exclusive and ex_key in schema:
        bounds.append((sign * float(schema[ex_key]), 1))
    return max(bounds) if bounds else None


def _value_fits(value: Any, c: Mapping[str, Any]) -> bool:
    allowed = _enum(c)
    if allowed is not None:
        return any(value == a and type(value) is type(a) for a in allowed)
    ctype = c.get("type")
    jtype = "null" if value is None else _JSON_TYPES.get(type(value), "object")
    return ctype is None or jtype in _widened(ctype)


def _widened(ctype: str | list[str]) -> set[str]:
    allowed = set(ctype) if isinstance(ctype, list) else {ctype}
    return allowed | {"integer"} if "number" in allowed else allowed


def _enum(schema: Mapping[str, Any]) -> list[Any] | None:
    if "const" in schema:
        return [schema["const"]]
    return list(schema["enum"]) if "enum" in schema else None


def _resolve(schema: Schema, defs: Mapping[str, Any]) -> Schema:
    seen = 0
    while isinstance(schema, Mapping) and "$ref" in schema and seen < 32:
        target = defs.get(str(schema["$ref"]).rsplit("/", 1)[-1], {})
        schema = {**target, **{k: v for k, v in schema.items() if k != "$ref"}}
        seen += 1
    return schema


def _ref(schema: Schema) -> str:
    return str(schema.get("$ref", "")) if isinstance(schema, Mapping) else ""


def _constraints(schema: Mapping[str, Any]) -> bool:
    return any(key not in _NOTES for key in schema)


def _nth(items: list[Any], index: int, rest: Schema) -> Schema:
    return items[index] if index < len(items) else rest


def _describe(schema: Schema) -> str:
    if not isinstance(schema, Mapping):
        return "any value" if schema else "no value"
    if "$ref" in schema:
        return str(schema["$ref"]).rsplit("/", 1)[-1]
    branches = schema.get("anyOf") or schema.get("oneOf")
    if branches:
        return " | ".join(_describe(b) for b in branches)
    values = _enum(schema)
    if values is not None:
        return "one of " + ", ".join(repr(v) for v in values)
    name = schema.get("title") if "properties" in schema else None
    kind = schema.get("format") or schema.get("type") or "value"
    return f"{kind} ({name})" if name else str(kind)


def _at(path: str) -> str:
    return f"at {path}: " if path else ""


def _first(problems: Any) -> str | None:
    return next((p for p in problems if p is not None), None)
