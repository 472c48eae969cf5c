"""``--since``: a duration back from now (``90m``, ``12h``, ``7d``, ``2w``: the durations
``pgflow prune`` takes) or a moment (``2026-11-28``, ``2026-11-28T09:30``, with or
without an offset; local time when it has none)."""

from __future__ import annotations

from datetime import datetime, timedelta

from pgflow._duration import parse_duration
from pgflow.errors import InvalidInputError

__all__ = ["parse_since", "since_option"]


def parse_since(text: str) -> datetime | timedelta:
    """Parse a ``--since`` value.

    Raises:
        ValueError: it is neither a duration nor an ISO date or date and time.
    """
    try:
        return parse_duration(text)
    except ValueError:
        moment = datetime.fromisoformat(text.strip())
    return moment if moment.utcoffset() is not None else moment.astimezone()


def since_option(text: str, option: str = "--since") -> datetime | timedelta:
    """Parse the value of a ``--since``-like option, or refuse it with a hint (exit 1).

    Raises:
        InvalidInputError: it is neither a duration nor a date.
    """
    try:
        return parse_since(text)
    except (ValueError, OverflowError):
        raise InvalidInputError(
            f"{option} {text!r} is neither a duration nor a date",
            hint=f"write e.g. {option} 90s, 15m, 24h, 7d, 1h30m or {option} 2026-11-28T09:30",
        ) from None
