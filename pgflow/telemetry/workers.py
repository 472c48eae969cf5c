"""Worker liveness: what ``pgflow workers`` lists and what ``pgflow check`` warns about.

Workers register in ``pgflow.workers`` and beat every ``heartbeat_interval`` seconds (10 by
default). A worker is *live* while it has not stopped and its last heartbeat is at most
:data:`LIVE_WITHIN` old (three default intervals); one that stopped beating without
stopping (killed, host lost, network cut) is *gone*; one that shut down is *stopped*.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

import psycopg
from psycopg.rows import dict_row

from pgflow.sql import query

__all__ = ["LIVE_WITHIN", "FlowLiveness", "WorkerInfo", "flow_liveness", "list_workers"]

LIVE_WITHIN = timedelta(seconds=30)
"""How recent a heartbeat must be for a worker to count as live: three default heartbeat
intervals (``Worker(heartbeat_interval=10)``; a test keeps the two in step)."""

WorkerState = Literal["live", "gone", "stopped"]


@dataclass(frozen=True, slots=True)
class WorkerInfo:
    """One registered worker.

    Attributes:
        worker_id: its id.
        state: ``live``, ``gone`` (heartbeat stopped, never shut down) or ``stopped``.
        hostname: where it runs.
        pid: its process id there.
        flow_slugs: the flows it serves.
        started_at: when it registered.
        last_heartbeat_at: its last heartbeat.
        heartbeat_age: seconds since then.
        stopped_at: when it shut down, or None.
        in_flight: tasks leased to it right now.
    """

    worker_id: uuid.UUID
    state: WorkerState
    hostname: str | None
    pid: int | None
    flow_slugs: list[str]
    started_at: datetime
    last_heartbeat_at: datetime
    heartbeat_age: float
    stopped_at: datetime | None
    in_flight: int

    def to_json(self) -> dict[str, Any]:
        """The ``--json`` shape (docs/telemetry.md)."""
        return {
            "worker_id": str(self.worker_id),
            "state": self.state,
            "hostname": self.hostname,
            "pid": self.pid,
            "flow_slugs": self.flow_slugs,
            "started_at": self.started_at.isoformat(),
            "last_heartbeat_at": self.last_heartbeat_at.isoformat(),
            "heartbeat_age_s": round(self.heartbeat_age, 3),
            "stopped_at": None if self.stopped_at is None else self.stopped_at.isoformat(),
            "in_flight": self.in_flight,
        }


def _state(row: dict[str, Any], live_within: timedelta) -> WorkerState:
    if row["stopped_at"] is not None:
        return "stopped"
    return "live" if row["heartbeat_age"] <= live_within.total_seconds() else "gone"


def list_workers(
    conn: psycopg.Connection[Any],
    *,
    live_within: timedelta = LIVE_WITHIN,
    seen_within: timedelta = timedelta(hours=24),
    include_all: bool = False,
) -> list[WorkerInfo]:
    """Workers not shut down that beat within ``seen_within`` (or all): live ones first.

    Args:
        conn: an autocommit connection (a role that may read the pgflow tables).
        live_within: the heartbeat age up to which a worker is live.
        seen_within: older silent workers are left out (unless ``include_all``).
        include_all: every registered worker, stopped ones included.
    """
    params = {"all": include_all, "seen_within": seen_within, "live_within": live_within}
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(query("telemetry_workers"), params).fetchall()
    return [
        WorkerInfo(
            worker_id=row["worker_id"],
            state=_state(row, live_within),
            hostname=row["hostname"],
            pid=row["pid"],
            flow_slugs=list(row["flow_slugs"]),
            started_at=row["started_at"],
            last_heartbeat_at=row["last_heartbeat_at"],
            heartbeat_age=float(row["heartbeat_age"]),
            stopped_at=row["stopped_at"],
            in_flight=int(row["in_flight"]),
        )
        for row in rows
    ]


@dataclass(frozen=True, slots=True)
class FlowLiveness:
    """Whether any live worker serves a flow.

    Attributes:
        flow_slug: the flow.
        live: how many live workers serve it.
        last_seen: the last heartbeat of any worker that served it, or None (never).
    """

    flow_slug: str
    live: int
    last_seen: datetime | None


def flow_liveness(
    conn: psycopg.Connection[Any],
    flow_slugs: Sequence[str],
    *,
    live_within: timedelta = LIVE_WITHIN,
) -> list[FlowLiveness]:
    """Live workers per flow, in the order of ``flow_slugs``."""
    params = {"flow_slugs": list(flow_slugs), "live_within": live_within}
    with conn.cursor(row_factory=dict_row) as cur:
        rows = {r["flow_slug"]: r for r in cur.execute(query("telemetry_flow_liveness"), params)}
    return [
        FlowLiveness(slug, int(rows[slug]["live"]), rows[slug]["last_seen"])
        for slug in flow_slugs
        if slug in rows
    ]
