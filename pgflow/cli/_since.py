"""``--since``: a duration back from now (``90m``, ``12h``, ``7d``, ``2w``: the durations
``pgflow prune`` takes) or a moment (``2026-11-28``, ``2026-11-28T09:30``, with or
without an offset; local time when it has none)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import click

from pgflow._duration import parse_duration

__all__ = ["SINCE", "parse_since"]


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


class _Since(click.ParamType["datetime | timedelta"]):
    name = "DURATION"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> datetime | timedelta:
        if isinstance(value, datetime | timedelta):
            return value
        try:
            return parse_since(str(value))
        except (ValueError, OverflowError):
            self.fail(
                f"{value!r} is neither a duration (90m, 12h, 7d, 2w) nor a date "
                "(2026-11-28, 2026-11-28T09:30)",
                param,
                ctx,
            )


SINCE = _Since()
