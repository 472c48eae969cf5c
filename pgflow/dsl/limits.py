"""Concurrency and rate limits of a flow and its steps, validated at definition time.

``Flow(..., concurrency=20)``, ``@flow.step(concurrency=5)``,
``@flow.step(concurrency=pgflow.Limit(2, key="customer_id"))`` and
``@flow.step(rate_limit="100/min")`` (or ``pgflow.RateLimit("100/min", key=...)``) record
limits that ``deploy`` and compiled SQL store with the flow (``pgflow.set_limits``: runtime
configuration, outside the shape). ``claim_tasks`` enforces them for every worker; see
docs/flow-control.md.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Final, Literal, cast

from pgflow.dsl.options import Where

__all__ = [
    "Limit",
    "LimitEntry",
    "RateLimit",
    "check_concurrency",
    "check_rate_limit",
    "parse_rate",
]

MAX_LIMIT: Final = 1_000_000
_UNITS: Final = {
    "s": 1, "sec": 1, "second": 1,
    "m": 60, "min": 60, "minute": 60,
    "h": 3600, "hour": 3600,
    "d": 86400, "day": 86400,
}  # fmt: skip
_RATE = re.compile(r"\s*(\d+)\s*/\s*(\d*)\s*([a-z]+)\s*")
_MAX_PERIOD: Final = 366 * 86400
_RATE_HINT: Final = (
    'write "COUNT/UNIT" or "COUNT/N UNIT", e.g. "100/min", "10/s", "5/30s", "1000/h"'
)


@dataclass(frozen=True, slots=True)
class Limit:
    """At most ``max`` tasks leased at once, per distinct value of the input field ``key``
    when given (e.g. ``Limit(5, key="customer_id")``), else for the whole scope."""

    max: int
    key: str | None = None


@dataclass(frozen=True, slots=True)
class RateLimit:
    """At most ``rate`` task starts (``"100/min"``), per distinct value of ``key`` when
    given. Bursts up to the full count are allowed; the bucket refills evenly."""

    rate: str
    key: str | None = None


@dataclass(frozen=True, slots=True)
class LimitEntry:
    """One limit as ``pgflow.set_limits`` stores it."""

    step: str | None
    kind: Literal["concurrency", "rate"]
    max: int
    per: int | None
    key: str | None

    @property
    def label(self) -> str:
        """``concurrency limit (flow)``, ``rate limit fetch``: how deploy and inspect name it."""
        return f"{self.kind} limit {'(flow)' if self.step is None else self.step}"

    @property
    def value_text(self) -> str:
        """``5``, ``100 per 60 s``, ``2 per customer_id``: the same words as the database's."""
        per = "" if self.per is None else f" per {self.per} s"
        key = "" if self.key is None else f" per {self.key}"
        return f"{self.max}{per}{key}"

    def to_json(self) -> dict[str, Any]:
        """The entry ``pgflow.set_limits`` takes."""
        return {"step": self.step, "kind": self.kind, "max": self.max, "per": self.per,
                "key": self.key}  # fmt: skip


def parse_rate(text: str) -> tuple[int, int]:
    """``"100/min"`` -> ``(100, 60)``: the count and the period in seconds.

    Raises:
        ValueError: not COUNT/UNIT, an unknown unit, or a count or period out of range.
    """
    match = _RATE.fullmatch(text.lower())
    unit = "" if match is None else match[3]
    if len(unit) > 2 and unit not in _UNITS and unit.endswith("s"):
        unit = unit[:-1]  # "minutes", "hours", "days"
    if match is None or unit not in _UNITS:
        raise ValueError(f"{text!r} is not a rate")
    count, multiple = int(match[1]), int(match[2] or 1)
    per = multiple * _UNITS[unit]
    if not 1 <= count <= MAX_LIMIT or not 1 <= per <= _MAX_PERIOD:
        raise ValueError(f"{text!r} is out of range")
    return count, per


def check_concurrency(
    where: Where, value: object, input_schema: dict[str, Any] | None
) -> LimitEntry | None:
    """Validate a ``concurrency=`` option (an int or a :class:`Limit`; None: no limit).

    Raises:
        DefinitionError: not an int or Limit, below 1, or keyed by a field the flow input
            does not have.
    """
    if value is None:
        return None
    limit = value if isinstance(value, Limit) else Limit(cast(int, value))
    count = limit.max
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_LIMIT:
        raise where.error(
            f"concurrency {count!r} is not a whole number from 1 to {MAX_LIMIT}",
            hint="pass e.g. concurrency=5 or concurrency=pgflow.Limit(5, key='customer_id')",
        )
    _check_key(where, limit.key, input_schema, "concurrency")
    return LimitEntry(where.step_slug, "concurrency", count, None, limit.key)


def check_rate_limit(
    where: Where, value: object, input_schema: dict[str, Any] | None
) -> LimitEntry | None:
    """Validate a ``rate_limit=`` option (``"100/min"`` or a :class:`RateLimit`).

    Raises:
        DefinitionError: a malformed rate (e.g. ``"100/fortnight"``), or a key the flow
            input does not have.
    """
    if value is None:
        return None
    limit = value if isinstance(value, RateLimit) else RateLimit(cast(str, value))
    if not isinstance(limit.rate, str):
        raise where.error(f"rate_limit {limit.rate!r} is not a string", hint=_RATE_HINT)
    try:
        count, per = parse_rate(limit.rate)
    except ValueError as exc:
        raise where.error(
            f"rate_limit {exc}: counts run from 1 to {MAX_LIMIT}, periods from 1 second to "
            "366 days, units s, min, h, day",
            hint=_RATE_HINT,
        ) from None
    _check_key(where, limit.key, input_schema, "rate_limit")
    return LimitEntry(where.step_slug, "rate", count, per, limit.key)


def _check_key(where: Where, key: object, input_schema: dict[str, Any] | None, option: str) -> None:
    if key is None:
        return
    if not isinstance(key, str) or not 1 <= len(key) <= 128:
        raise where.error(
            f"{option} key {key!r} is not a field name (1 to 128 characters)",
            hint="key names a field of the flow input, e.g. key='customer_id'",
        )
    if input_schema is None:
        return  # the flow takes any JSON: the field cannot be checked before runs start
    properties = input_schema.get("properties")
    if input_schema.get("type") != "object" or not isinstance(properties, dict):
        raise where.error(
            f"{option} is keyed by {key!r}, but the flow input is not an object with fields",
            hint="key a limit only in flows whose input model is an object (a pydantic model)",
        )
    if key not in properties:
        known = ", ".join(sorted(properties)) or "none"
        raise where.error(
            f"{option} is keyed by {key!r}, which the flow input model does not have "
            f"(fields: {known})",
            hint="name one of the input model's fields, or add the field to the model",
        )
