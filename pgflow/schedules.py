"""Operating deployed schedules: list them with their next tick, pause and resume them.

Schedules are defined in code (``flow.schedule(...)``, see :mod:`pgflow.dsl.schedules`) and
deployed with the flow; workers start their ticks. This module is what ``pgflow schedules``
and scripts use to look at them and switch them off and on without a deploy.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row

from pgflow.db.errors import wrap_db_errors
from pgflow.dsl.schedules import next_tick
from pgflow.sql import query

__all__ = ["ScheduleState", "list_schedules", "pause_schedules"]


@dataclass(frozen=True, slots=True)
class ScheduleState:
    """A deployed schedule and where it stands.

    Attributes:
        flow_slug: the flow it starts.
        name: its name within the flow.
        cron: the cron expression.
        timezone: the IANA zone the expression is read in.
        catch_up: ``latest``, ``all`` or ``none``.
        input: the input each tick starts with.
        paused: whether it is paused.
        last_tick: the newest tick started (or passed over), None before the first.
        next_tick: the next tick a worker will start (None while paused).
    """

    flow_slug: str
    name: str
    cron: str
    timezone: str
    catch_up: str
    input: Any
    paused: bool
    last_tick: datetime | None
    next_tick: datetime | None

    def to_json(self) -> dict[str, Any]:
        """A JSON-compatible dict (timestamps as ISO 8601 text)."""
        return {
            "flow_slug": self.flow_slug,
            "name": self.name,
            "cron": self.cron,
            "timezone": self.timezone,
            "catch_up": self.catch_up,
            "input": self.input,
            "paused": self.paused,
            "last_tick": self.last_tick.isoformat() if self.last_tick else None,
            "next_tick": self.next_tick.isoformat() if self.next_tick else None,
        }


def list_schedules(
    conn: psycopg.Connection[Any], flow_slug: str | None = None
) -> list[ScheduleState]:
    """The deployed schedules (of one flow, or all), by flow and name."""
    with wrap_db_errors(), conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(query("schedules_list"), {"flow_slug": flow_slug}).fetchall()
    return [_state(row) for row in rows]


def _state(row: dict[str, Any]) -> ScheduleState:
    since = row["last_tick"] or row["created_at"]
    upcoming = None if row["paused"] else next_tick(row["cron"], row["timezone"], since)
    return ScheduleState(
        row["flow_slug"], row["name"], row["cron"], row["timezone"], row["catch_up"],
        row["input"], row["paused"], row["last_tick"], upcoming,
    )  # fmt: skip


def pause_schedules(
    conn: psycopg.Connection[Any], flow_slug: str, *, paused: bool = True, name: str | None = None
) -> int:
    """Pause (or resume) a flow's schedules, or only the named one; return how many changed.

    Resuming does not start the ticks missed while paused.

    Raises:
        UnknownFlowError: the flow has no (such) schedule.
    """
    with wrap_db_errors():
        row = conn.execute(
            query("schedules_pause"), {"flow_slug": flow_slug, "paused": paused, "name": name}
        ).fetchone()
    return int(row[0]) if row else 0
