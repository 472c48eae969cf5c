"""Decoding the JSON pgflow reads from Postgres: one cell at a time, never raising.

Postgres stores JSON that Python cannot decode: a value 5,000 levels deep, an integer with
5,001 digits. One such value must never stop a worker or crash a reader (docs/guarantees.md), so the
cursors that fetch inputs and outputs decode every ``json``/``jsonb`` cell on its own, with
a loader that turns a refusal into a value:

* :func:`decode_task_values` (the worker's claims) decodes exactly as psycopg's default
  loader does (the standard library's ``json.loads``, never orjson: see
  :mod:`pgflow._json`) and yields :class:`Undecodable` for a value it refuses, so that
  task fails alone.
* :func:`decode_for_reading` (clients, hence the CLI) decodes with pydantic-core (the
  same values as the standard library, faster) within its fixed limits: 200 levels of
  nesting, which keeps every :class:`~pgflow.models.Run` serialisable (pydantic stops at
  255), and 4,300 digits per number. A value beyond them reads as the marker
  ``{"$undecodable": true, "reason": "...", "bytes": N}``.

Both cover text-format results (every pgflow query), arrays of ``jsonb`` included, and
cost about 2 µs per cursor to set up; per cell they cost what psycopg's default does.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from typing import Any, Final

import pydantic_core
from psycopg import AsyncCursor, Cursor, postgres
from psycopg.abc import Buffer
from psycopg.adapt import Loader

__all__ = [
    "READ_MAX_DEPTH",
    "READ_MAX_DIGITS",
    "UNDECODABLE",
    "Undecodable",
    "decode_for_reading",
    "decode_task_values",
    "decode_text_for_reading",
]

UNDECODABLE: Final = "$undecodable"
READ_MAX_DEPTH: Final = 200  # pydantic-core's limits, fixed in its parser
READ_MAX_DIGITS: Final = 4300
_JSON_OIDS: Final = (postgres.types["json"].oid, postgres.types["jsonb"].oid)

AnyCursor = Cursor[Any] | AsyncCursor[Any]


@dataclass(frozen=True, slots=True)
class Undecodable:
    """A stored JSON value Python refused to decode.

    Attributes:
        reason: what is wrong with it, e.g. "a number in it is too long for Python (...)".
        size: the length of its JSON text in bytes.
    """

    reason: str
    size: int

    def marker(self) -> dict[str, Any]:
        """The JSON object readers get in place of the value."""
        return {UNDECODABLE: True, "reason": self.reason, "bytes": self.size}


class _TaskValueLoader(Loader):
    """``json.loads``, as psycopg's default loader, but a refusal becomes :class:`Undecodable`."""

    def load(self, data: Buffer) -> Any:
        raw = data if isinstance(data, bytes) else bytes(data)
        try:
            return json.loads(raw)  # inline: this runs for every claimed task
        except RecursionError:
            limit = sys.getrecursionlimit()
            reason = f"it is nested too deeply for Python's JSON decoder (about {limit} levels)"
            return Undecodable(reason, len(raw))
        except ValueError as exc:  # the int max-str-digits limit; jsonb is never malformed
            detail = str(exc).split(";")[0]  # "Exceeds the limit (4300 digits) ...: value has N"
            reason = f"a number in it is too long for Python ({detail[:1].lower()}{detail[1:]})"
            return Undecodable(reason, len(raw))


class _ReadingLoader(Loader):
    """pydantic-core's ``from_json``; a refusal becomes the ``$undecodable`` marker."""

    def load(self, data: Buffer) -> Any:
        raw = data if isinstance(data, bytes) else bytes(data)
        try:
            return pydantic_core.from_json(raw)
        except ValueError as exc:
            return Undecodable(_reading_reason(str(exc)), len(raw)).marker()


def _reading_reason(problem: str) -> str:
    # pydantic-core says "recursion limit exceeded at line 1 column 202" and
    # "number out of range at line 1 column 4302"
    if problem.startswith("recursion limit exceeded"):
        return f"it is nested more than {READ_MAX_DEPTH} levels deep"
    if problem.startswith("number out of range"):
        return f"a number in it has more than {READ_MAX_DIGITS} digits"
    return f"it cannot be decoded: {problem}"


def decode_text_for_reading(text: str) -> Any:
    """Decode JSON text as readers do (a stored value fetched by a client): beyond the
    reading limits, the ``$undecodable`` marker."""
    try:
        return pydantic_core.from_json(text)
    except ValueError as exc:
        return Undecodable(_reading_reason(str(exc)), len(text.encode())).marker()


def decode_task_values(cursor: AnyCursor) -> None:
    """Decode the cursor's JSON cells like psycopg does; refused ones as :class:`Undecodable`."""
    for oid in _JSON_OIDS:
        cursor.adapters.register_loader(oid, _TaskValueLoader)


def decode_for_reading(cursor: AnyCursor) -> None:
    """Decode the cursor's JSON cells within the reading limits, beyond them as a marker."""
    for oid in _JSON_OIDS:
        cursor.adapters.register_loader(oid, _ReadingLoader)
