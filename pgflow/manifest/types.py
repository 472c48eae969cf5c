"""Short names for JSON Schemas: what a manifest shows as a step's input and output types.

The name of a schema is its ``title`` (pydantic gives every model its class name), else
one built from its structure: ``string``, ``integer``, ``array of Page``,
``object of number``, ``Page | null``, ``"a" | "b"``. A schema that constrains nothing is
``any``. Names are for reading and comparing at a glance, not a full type.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from pgflow.dsl.compat import TypeSchema

__all__ = ["schema_title", "type_title"]

_MAX_DEPTH = 4  # nesting shown before "…"


def type_title(schema: TypeSchema | None) -> str | None:
    """The name of a pydantic schema; None when the type is not known (no annotation)."""
    if schema is None:
        return None
    return _name(schema.schema, schema.defs, 0)


def schema_title(document: Any) -> str | None:
    """The name of a stored JSON Schema document (``$defs`` inside it); None if not one."""
    if isinstance(document, bool):
        return _name(document, {}, 0)
    if not isinstance(document, Mapping):
        return None
    defs = document.get("$defs")
    body = {k: v for k, v in document.items() if k != "$defs"}
    return _name(body, defs if isinstance(defs, Mapping) else {}, 0)


def _name(schema: Any, defs: Mapping[str, Any], depth: int) -> str:
    if schema is True or schema is None:
        return "any"
    if schema is False:
        return "nothing"
    if not isinstance(schema, Mapping):
        return "any"
    if depth > _MAX_DEPTH:
        return "…"
    target = _target(schema, defs)
    if target is not None:
        return _name(target, defs, depth)
    title = schema.get("title")
    if isinstance(title, str) and title:
        return title
    return _structural(schema, defs, depth)


def _target(schema: Mapping[str, Any], defs: Mapping[str, Any]) -> Any:
    ref = schema.get("$ref")
    if not isinstance(ref, str) or not ref.startswith("#/$defs/"):
        return None
    return defs.get(ref.removeprefix("#/$defs/"), True)


def _structural(schema: Mapping[str, Any], defs: Mapping[str, Any], depth: int) -> str:
    for key in ("anyOf", "oneOf"):
        branches = schema.get(key)
        if isinstance(branches, list) and branches:
            return " | ".join(_name(b, defs, depth + 1) for b in branches)
    if "const" in schema:
        return json.dumps(schema["const"])
    values = schema.get("enum")
    if isinstance(values, list) and values:
        return " | ".join(json.dumps(v) for v in values)
    kind = schema.get("type")
    if isinstance(kind, list):
        return " | ".join(_typed({**schema, "type": k}, defs, depth) for k in kind)
    return _typed(schema, defs, depth)


def _typed(schema: Mapping[str, Any], defs: Mapping[str, Any], depth: int) -> str:
    kind = schema.get("type")
    if kind == "array":
        prefix = schema.get("prefixItems")
        if isinstance(prefix, list) and prefix:
            return "[" + ", ".join(_name(p, defs, depth + 1) for p in prefix) + "]"
        return f"array of {_name(schema.get('items', True), defs, depth + 1)}"
    if kind == "object":
        extra = schema.get("additionalProperties")
        if not schema.get("properties") and isinstance(extra, Mapping):
            return f"object of {_name(extra, defs, depth + 1)}"
        return "object"
    return kind if isinstance(kind, str) else "any"
