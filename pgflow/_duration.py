"""Durations written as a whole number and a unit: ``"45s"``, ``"90m"``, ``"12h"``, ``"30d"``,
``"2w"``; the one parser behind ``Flow(..., retention=...)`` and ``pgflow prune --older-than``.
"""

from __future__ import annotations

import re
from datetime import timedelta

__all__ = ["DURATION_HINT", "interval_literal", "parse_duration"]

DURATION_HINT = (
    "write a whole number and a unit: s (seconds), m (minutes), h (hours), d (days) or "
    'w (weeks), e.g. "30d", "12h" or "90m"'
)
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_DURATION = re.compile(r"(?P<number>[0-9]{1,9})(?P<unit>[smhdw])")
_MAX_SECONDS = 86400 * 365 * 1000


def parse_duration(text: object) -> timedelta:
    """Parse a duration such as ``"30d"``.

    Args:
        text: the duration; surrounding blanks are ignored, nothing else is.

    Returns:
        The positive duration.

    Raises:
        ValueError: not a whole number of 1 or more followed by one of s, m, h, d, w, or
            longer than 1000 years. The message says which (callers name the value);
            :data:`DURATION_HINT` says how to write one.
    """
    match = _DURATION.fullmatch(text.strip()) if isinstance(text, str) else None
    if match is None:
        raise ValueError("expected a whole number followed by a unit")
    number = int(match["number"])
    if number == 0:
        raise ValueError("it must be longer than 0")
    seconds = number * _SECONDS[match["unit"]]
    if seconds > _MAX_SECONDS:
        raise ValueError("it is longer than 1000 years")
    return timedelta(seconds=seconds)


def interval_literal(value: timedelta) -> str:
    """The duration as Postgres interval text in its largest exact unit.

    ``30d`` gives ``"30 days"``, ``2w`` gives ``"14 days"``, ``90m`` gives ``"90 minutes"``.
    """
    seconds = int(value.total_seconds())
    for name, size in (("days", 86400), ("hours", 3600), ("minutes", 60)):
        if seconds % size == 0:
            return f"{seconds // size} {name}"
    return f"{seconds} seconds"
