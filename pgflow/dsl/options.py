"""Flow and step options (tunables) and step conditions, validated at definition time.

Options are runtime tunables outside a flow's shape: ``max_attempts`` (at least 1,
counting the first attempt), ``base_delay`` (seconds, at least 0), ``timeout`` (seconds,
at least 1) and, on steps, ``start_delay`` (seconds, at least 0). Conditions are part of
the shape: ``if_`` / ``if_not`` JSON-object patterns and the ``when_unmet`` /
``when_exhausted`` modes.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Final, Literal, cast, get_args

from pgflow._duration import DURATION_HINT, parse_duration
from pgflow.dsl._unset import UNSET, Unset
from pgflow.errors import DefinitionError

WhenMode = Literal["skip", "skip-cascade", "fail"]
WHEN_MODES: Final[tuple[str, ...]] = get_args(WhenMode)

FLOW_DEFAULTS: Final = {"max_attempts": 3, "base_delay": 1, "timeout": 60}
"""The SQL defaults of ``pgflow.create_flow``."""
DEFAULT_START_DELAY: Final = 0
DEFAULT_WHEN_UNMET: Final[WhenMode] = "skip"
DEFAULT_WHEN_EXHAUSTED: Final[WhenMode] = "fail"

_MINIMUMS: Final = {"max_attempts": 1, "base_delay": 0, "timeout": 1, "start_delay": 0}
_INT4_MAX: Final = 2**31 - 1
# Patterns are small JSON objects; these bounds keep validation, the canonical JSON and
# Python's int-to-text conversion (at most 4300 digits) from failing on absurd values.
_MAX_PATTERN_DEPTH: Final = 100
_MAX_INT_BITS: Final = 13_000  # about 3,900 decimal digits


@dataclass(frozen=True, slots=True)
class Where:
    """The flow (and step) an option belongs to, for error messages."""

    flow_slug: str
    step_slug: str | None = None

    def __str__(self) -> str:
        if self.step_slug is None:
            return f"flow {self.flow_slug!r}"
        return f"step {self.step_slug!r} of flow {self.flow_slug!r}"

    def error(self, message: str, hint: str) -> DefinitionError:
        """Build a :class:`DefinitionError` located here."""
        return DefinitionError(
            f"{self}: {message}", hint=hint, flow_slug=self.flow_slug, step_slug=self.step_slug
        )


@dataclass(frozen=True, slots=True)
class Options:
    """Tunables as given by the user; :data:`UNSET` means "not given"."""

    max_attempts: int | Unset = UNSET
    base_delay: int | Unset = UNSET
    timeout: int | Unset = UNSET
    start_delay: int | Unset = UNSET


def check_options(where: Where, **values: object) -> Options:
    """Validate option values and return them as :class:`Options`.

    Args:
        where: the flow or step they belong to.
        **values: option name to value; :data:`UNSET` values are kept as such.

    Returns:
        The validated options.

    Raises:
        DefinitionError: an option is not an int (``bool`` is refused) or out of range.
    """
    checked: dict[str, int | Unset] = {}
    for name, value in values.items():
        checked[name] = value if isinstance(value, Unset) else _check_int(where, name, value)
    return Options(**checked)


def _check_int(where: Where, name: str, value: object) -> int:
    minimum = _MINIMUMS[name]
    if isinstance(value, bool) or not isinstance(value, int):
        raise where.error(
            f"option {name}={value!r} must be an int, not {type(value).__name__}",
            hint=f"pass a whole number of at least {minimum}, e.g. {name}={max(minimum, 1)}",
        )
    if not minimum <= value <= _INT4_MAX:
        raise where.error(
            f"option {name}={value} is out of range",
            hint=f"use a value from {minimum} to {_INT4_MAX}",
        )
    return value


PRIORITY_RANGE = (-100, 100)
"""The priorities a flow or a start may have (higher first; 0 is the default)."""


def check_priority(where: Where, value: object) -> int:
    """Validate a flow's ``priority`` (an int from -100 to 100).

    Raises:
        DefinitionError: not an int, or out of range.
    """
    low, high = PRIORITY_RANGE
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise where.error(
            f"priority {value!r} is not an integer from {low} to {high}",
            hint="pass e.g. priority=10 (higher first; the default is 0)",
        )
    return value


def check_retention(where: Where, value: object) -> timedelta | None:
    """Validate ``retention`` (a duration such as ``"30d"``, or None to keep runs).

    Raises:
        DefinitionError: the value is not a duration :func:`~pgflow._duration.parse_duration`
            accepts.
    """
    if value is None:
        return None
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise where.error(
            f"retention {value!r} is not a valid duration: {exc}", hint=DURATION_HINT
        ) from None


def check_mode(where: Where, name: str, value: object, default: WhenMode) -> WhenMode:
    """Validate a ``when_unmet`` / ``when_exhausted`` value (:data:`UNSET` → ``default``)."""
    if isinstance(value, Unset):
        return default
    if isinstance(value, str) and value in WHEN_MODES:
        return cast(WhenMode, value)
    raise where.error(
        f"{name}={value!r} is not a valid mode",
        hint=f"use one of {', '.join(repr(m) for m in WHEN_MODES)}",
    )


def check_pattern(where: Where, name: str, value: object) -> dict[str, Any] | None:
    """Validate a condition pattern: a JSON object, or :data:`UNSET`/``None`` for none.

    Args:
        where: the step it belongs to.
        name: ``if_`` or ``if_not`` (for the message).
        value: the pattern as given.

    Returns:
        A plain-``dict`` copy of the pattern, or ``None``.

    Raises:
        DefinitionError: it is not a mapping with ``str`` keys and JSON values.
    """
    if isinstance(value, Unset) or value is None:
        return None
    if not isinstance(value, Mapping):
        raise where.error(
            f"{name} must be a JSON object (a dict), not {type(value).__name__}",
            hint=f'write the pattern as a dict, e.g. {name}={{"website": {{"ok": true}}}}',
        )
    problem = _json_problem(value, name)
    if problem is not None:
        raise where.error(
            f"{name} is not a JSON object: {problem}",
            hint="use only dicts with str keys, lists, str, int, finite float, bool and None",
        )
    return cast(dict[str, Any], _plain(value))


def _json_problem(value: object, path: str, depth: int = 0) -> str | None:
    if depth > _MAX_PATTERN_DEPTH:
        return f"{path.split('[')[0]} is nested more than {_MAX_PATTERN_DEPTH} levels deep"
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        too_long = value.bit_length() > _MAX_INT_BITS
        return f"{path} is an integer with thousands of digits" if too_long else None
    if isinstance(value, float):
        return None if math.isfinite(value) else f"{path} is {value}, which JSON cannot hold"
    if isinstance(value, str):
        return _string_problem(value, path)
    if isinstance(value, list | tuple):
        return _first(
            _json_problem(item, f"{path}[{i}]", depth + 1) for i, item in enumerate(value)
        )
    if isinstance(value, Mapping):
        return _first(_entry_problem(key, item, path, depth) for key, item in value.items())
    return f"{path} is a {type(value).__name__}, which is not a JSON value"


def _entry_problem(key: object, item: object, path: str, depth: int) -> str | None:
    if not isinstance(key, str):
        return f"{path} has the key {key!r}, which is not a str"
    return _string_problem(key, path) or _json_problem(item, f"{path}[{key!r}]", depth + 1)


def _string_problem(text: str, path: str) -> str | None:
    if "\x00" in text:
        return f"{path} contains a NUL character, which Postgres jsonb cannot store"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return f"{path} contains a lone surrogate, which is not valid Unicode"
    return None


def _first(problems: Any) -> str | None:
    return next((p for p in problems if p is not None), None)


def _plain(value: object) -> object:
    """Copy into plain dicts, lists and builtin scalars: a subclass such as an ``IntEnum``
    or ``numpy.float64`` would otherwise print itself its own way into the compiled SQL."""
    if isinstance(value, Mapping):
        return {str.__str__(key): _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, int):
        return int.__int__(value)  # the base methods ignore a subclass's overrides
    if isinstance(value, float):
        return float.__float__(value)
    if isinstance(value, str):
        return str.__str__(value)
    return value
