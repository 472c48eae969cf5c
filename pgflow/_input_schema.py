"""Checking a run input against the JSON Schema stored with its flow (docs/runs.md).

``pgflow deploy`` stores each flow's input schema (pydantic's validation schema of the
flow's input model) in ``pgflow.flows.input_schema``. ``Client.start(slug, ...)`` and
``pgflow start`` fetch it and check the input here, with the ``jsonschema`` library, before
anything is written, so a start that would only fail in a worker is refused at once with
every error listed. Validators are built once per distinct schema text (an LRU cache), so a
start costs one small query and the validation itself.

Formats (``"format": "date-time"``, ...) are annotations here, as JSON Schema's 2020-12
draft says by default; the worker's pydantic model still checks them.
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

from jsonschema import exceptions as schema_errors
from jsonschema import validators
from jsonschema.protocols import Validator

from pgflow.errors import DefinitionError, InvalidInputError

__all__ = ["check_input"]

MAX_LISTED = 20  # errors listed in one message; the rest are counted
_MAX_MESSAGE = 200  # characters of one error's message (they may quote the whole value)


def check_input(flow_slug: str, schema_text: str | None, value: Any) -> None:
    """Refuse ``value`` unless it matches the flow's stored input schema.

    Args:
        flow_slug: the flow, for messages.
        schema_text: the stored schema as JSON text; None means the flow has none (it
            accepts any input).
        value: the run input, as JSON-compatible data.

    Raises:
        InvalidInputError: the input does not match; the message lists every error (path and
            reason), ``errors`` holds them as ``(path, message)`` pairs.
        DefinitionError: the stored schema is not a valid JSON Schema.
    """
    if schema_text is None:
        return
    validator = _validator(flow_slug, schema_text)
    try:
        errors = sorted(
            validator.iter_errors(value),
            key=lambda error: (list(map(str, error.absolute_path)), error.message),
        )
    except RecursionError:  # a recursive model and an input nested deeper than Python goes
        raise InvalidInputError(
            f"the input for flow {flow_slug!r} is nested too deeply to validate",
            hint="pass a less deeply nested value",
            flow_slug=flow_slug,
        ) from None
    if not errors:
        return
    listed = [(_path(error.absolute_path), _short(error.message)) for error in errors]
    lines = [f"  {path}: {message}" for path, message in listed[:MAX_LISTED]]
    if len(listed) > MAX_LISTED:
        lines.append(f"  ... and {len(listed) - MAX_LISTED} more")
    count = "1 error" if len(listed) == 1 else f"{len(listed)} errors"
    raise InvalidInputError(
        f"invalid input for flow {flow_slug!r} ({count}; nothing was started):\n"
        + "\n".join(lines),
        hint="pass an input that matches the flow's input model; its JSON Schema is stored "
        "with the flow (`select pgflow.flow_input_schema('" + flow_slug + "')`)",
        flow_slug=flow_slug,
        errors=listed,
    )


@lru_cache(maxsize=64)
def _validator(flow_slug: str, schema_text: str) -> Validator:
    schema = json.loads(schema_text)
    cls = validators.validator_for(schema, default=validators.Draft202012Validator)
    try:
        cls.check_schema(schema)
    except schema_errors.SchemaError as exc:
        raise DefinitionError(
            f"flow {flow_slug!r}: its stored input schema is not a valid JSON Schema: "
            f"{_short(exc.message)}",
            hint="deploy the flow again (`pgflow deploy FLOWS`) to store the schema of its "
            "input model",
            flow_slug=flow_slug,
        ) from None
    validator: Validator = cls(schema)
    return validator


def _path(parts: Any) -> str:
    text = "input"
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else f".{part}"
    return text


def _short(message: str) -> str:
    return message if len(message) <= _MAX_MESSAGE else message[: _MAX_MESSAGE - 3] + "..."
