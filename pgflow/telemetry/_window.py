"""The ``since`` of a telemetry query: a moment, or a duration back from the server's clock."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import psycopg

from pgflow.errors import InvalidInputError, UnknownFlowError
from pgflow.sql import query

__all__ = ["check_flow", "window_params"]


def window_params(since: datetime | timedelta) -> dict[str, Any]:
    """``since_at`` / ``since_ago`` query parameters (the other one None).

    Raises:
        InvalidInputError: not an aware datetime nor a non-negative timedelta.
    """
    if isinstance(since, datetime) and since.utcoffset() is not None:
        return {"since_at": since, "since_ago": None}
    if isinstance(since, timedelta) and since >= timedelta(0):
        return {"since_at": None, "since_ago": since}
    raise InvalidInputError(
        f"since must be a timezone-aware datetime or a timedelta of at least 0, got {since!r}",
        hint="e.g. since=timedelta(hours=24), or --since 24h on the command line",
    )


def check_flow(conn: psycopg.Connection[Any], flow_slug: str | None) -> None:
    """Refuse a ``--flow`` that names no deployed flow.

    Raises:
        UnknownFlowError: no flow with that slug is deployed.
    """
    if flow_slug is None:
        return
    row = conn.execute(query("telemetry_flow_exists"), {"flow_slug": flow_slug}).fetchone()
    if row is None or not row[0]:
        raise UnknownFlowError(
            f"unknown flow {flow_slug!r}: no flow with this slug is deployed",
            hint="`pgflow flows` lists the deployed flows",
            flow_slug=flow_slug,
        )
