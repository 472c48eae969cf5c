"""JSON encoding for values pgflow sends to Postgres.

Outputs and inputs are encoded with orjson (several times faster than the standard
library on large values). orjson refuses integers beyond 64 bits, which Postgres' ``jsonb``
stores exactly; those values fall back to the standard library, so nothing is lost.
Decoding never uses orjson: it would read such integers as floats and silently lose
digits. See :mod:`pgflow._decode` for how pgflow decodes what it reads.
"""

from __future__ import annotations

import json
from typing import Any

import orjson
from psycopg.types.json import Jsonb

__all__ = ["dumps", "jsonb"]


def dumps(value: Any) -> bytes:
    """Encode a JSON-compatible value as UTF-8 JSON bytes.

    Raises:
        TypeError: the value is not JSON-compatible.
    """
    try:
        return orjson.dumps(value)
    except TypeError:
        # orjson refuses ints beyond 64 bits (and non-str keys): let the stdlib decide.
        return json.dumps(value, ensure_ascii=False, allow_nan=False).encode()


def jsonb(value: Any) -> Jsonb:
    """Wrap a value as a ``jsonb`` query parameter encoded with :func:`dumps`."""
    return Jsonb(value, dumps=dumps)
