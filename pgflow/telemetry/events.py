"""Lifecycle events of runs, steps and tasks: what ``pgflow events`` prints as NDJSON.

Events are derived from the timestamps the SQL core already stores (``runs``,
``step_states``, ``step_tasks``), by the named query ``telemetry_events``, so a replay needs
nothing recorded beforehand and costs nothing on the hot path. :func:`recent_events`
replays a window; :func:`follow_events` then keeps polling, woken by the notifications the
SQL core sends to registered listeners (it registers as one while it follows). Schema
version 1 of each line is documented in docs/telemetry.md.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from psycopg import errors, sql
from psycopg.rows import dict_row

from pgflow.errors import UnknownRunError
from pgflow.sql import query
from pgflow.telemetry._window import check_flow, window_params

__all__ = [
    "EVENT_SCHEMA_VERSION",
    "Event",
    "check_flow",
    "check_run",
    "follow_events",
    "recent_events",
]

EVENT_SCHEMA_VERSION = 1
_ERROR_CHARS = 500
_LISTEN_TTL = 60  # seconds a listener registration of follow_events lives unless renewed


@dataclass(frozen=True, slots=True)
class Event:
    """One lifecycle event (the fields of an NDJSON line; docs/telemetry.md).

    Attributes:
        ts: when it happened (the database clock).
        event: ``run:started``, ``step:completed``, ``task:retried``, ... (kind:status).
        run_id: the run.
        flow_slug: its flow.
        step_slug: the step (step and task events), else None.
        task_index: the task (task events), else None.
        attempt: the attempt number (task events), else None.
        worker_id: the worker that ran the attempt (task started/completed/failed).
        duration_ms: handler time of the attempt (task completed/failed).
        error_type: the exception type (task failed/retried).
        error: the first line of the error (run/step/task failed, task retried).
        reason: why a step was skipped.
    """

    ts: datetime
    event: str
    run_id: uuid.UUID
    flow_slug: str
    step_slug: str | None = None
    task_index: int | None = None
    attempt: int | None = None
    worker_id: uuid.UUID | None = None
    duration_ms: float | None = None
    error_type: str | None = None
    error: str | None = None
    reason: str | None = None

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Event:
        """Build from a ``telemetry_events`` row."""
        fields = {name: row[name] for name in cls.__dataclass_fields__}
        return cls(**{**fields, "error": _first_line(row["error"])})

    @property
    def key(self) -> tuple[Any, ...]:
        """What tells two events apart (a follower prints each once)."""
        return (self.ts, self.event, self.run_id, self.step_slug, self.task_index, self.attempt)

    def to_json(self) -> dict[str, Any]:
        """The NDJSON line's object: ``v`` first, then every field (None as null)."""
        return {
            "v": EVENT_SCHEMA_VERSION,
            "ts": self.ts.astimezone(UTC).isoformat().replace("+00:00", "Z"),
            "event": self.event,
            "run_id": str(self.run_id),
            "flow_slug": self.flow_slug,
            "step_slug": self.step_slug,
            "task_index": self.task_index,
            "attempt": self.attempt,
            "worker_id": None if self.worker_id is None else str(self.worker_id),
            "duration_ms": None if self.duration_ms is None else round(self.duration_ms, 3),
            "error_type": self.error_type,
            "error": self.error,
            "reason": self.reason,
        }


def _first_line(text: str | None) -> str | None:
    if text is None:
        return None
    line = (text.strip().splitlines() or [""])[0]
    return line if len(line) <= _ERROR_CHARS else line[: _ERROR_CHARS - 1] + "…"


def check_run(conn: psycopg.Connection[Any], run_id: uuid.UUID | str | None) -> uuid.UUID | None:
    """Parse a ``--run`` and refuse one that does not exist.

    Raises:
        UnknownRunError: not a UUID, or no run has it.
    """
    if run_id is None:
        return None
    try:
        parsed = run_id if isinstance(run_id, uuid.UUID) else uuid.UUID(str(run_id).strip())
    except ValueError:
        parsed = None
    row = (
        conn.execute(query("telemetry_run_exists"), {"run_id": parsed}).fetchone()
        if parsed
        else None
    )
    if parsed is None or row is None or not row[0]:
        raise UnknownRunError(
            f"unknown run {run_id}: no run has this id",
            hint="copy the id `pgflow start` printed, or find it with `pgflow runs`",
            run_id=str(run_id),
        )
    return parsed


def _fetch(
    conn: psycopg.Connection[Any],
    since: datetime | timedelta,
    flow_slug: str | None,
    run_id: uuid.UUID | None,
    limit: int,
) -> list[Event]:
    params = {**window_params(since), "flow_slug": flow_slug, "run_id": run_id, "limit": limit}
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(query("telemetry_events"), params).fetchall()
    return [Event.from_row(row) for row in reversed(rows)]


def recent_events(
    conn: psycopg.Connection[Any],
    *,
    since: datetime | timedelta = timedelta(hours=1),
    flow_slug: str | None = None,
    run_id: uuid.UUID | str | None = None,
    limit: int = 1000,
) -> list[Event]:
    """The newest ``limit`` events at or after ``since``, oldest first.

    Args:
        conn: an autocommit connection (a role that may read the pgflow tables).
        since: a moment (timezone-aware) or a duration back from the server's clock.
        flow_slug: only events of this flow's runs.
        run_id: only events of this run.
        limit: at most this many (the newest).

    Raises:
        UnknownFlowError: ``flow_slug`` names no deployed flow.
        UnknownRunError: ``run_id`` names no run.
        InvalidInputError: a ``since`` that is neither an aware datetime nor a timedelta.
    """
    check_flow(conn, flow_slug)
    run = check_run(conn, run_id)
    limit = max(1, limit)
    for window in _windows(conn, since):
        events = _fetch(conn, window, flow_slug, run, limit)
        if len(events) == limit:
            break
    return events


_STEPS = (timedelta(minutes=1), timedelta(minutes=10), timedelta(hours=1), timedelta(hours=6))


def _windows(
    conn: psycopg.Connection[Any], since: datetime | timedelta
) -> list[datetime | timedelta]:
    """Narrow windows first, ending with ``since``: the newest events need the least work.

    When a narrower window already holds ``limit`` events, they are the newest of the wider
    one too, so reading every run of an hour or a day is needed only when it is quiet.
    """
    window_params(since)  # refuse a bad since before any query
    if isinstance(since, timedelta):
        ago = since
    else:
        row = conn.execute(query("telemetry_now")).fetchone()
        ago = (row[0] if row else datetime.now(UTC)) - since
    narrower: list[datetime | timedelta] = [step for step in _STEPS if step < ago]
    return [*narrower, since]


@dataclass(slots=True)
class _Cursor:
    """Where the next poll reads from, and the events at or after it already yielded."""

    since: datetime | timedelta
    seen: set[tuple[Any, ...]]


def follow_events(
    conn: psycopg.Connection[Any],
    *,
    since: datetime | timedelta = timedelta(hours=1),
    flow_slug: str | None = None,
    run_id: uuid.UUID | None = None,
    limit: int = 1000,
    poll_interval: float = 1.0,
    overlap: timedelta = timedelta(seconds=5),
    batch: int = 100_000,
) -> Iterator[Event]:
    """Yield the newest ``limit`` events since ``since``, then new ones as they happen.

    Runs until the caller stops iterating. LISTENs on ``pgflow_tasks`` and
    ``pgflow_cancelled`` (and on the run's channel with ``run_id``) before the first read;
    a notification, or ``poll_interval`` seconds without one, triggers the next poll (at
    most about ten a second). Each poll reads again from ``overlap`` before the previous
    one began, so a transaction that commits up to ``overlap`` after its timestamps is
    still seen; events already yielded are skipped.

    Args:
        conn: a dedicated autocommit connection (it LISTENs); ``flow_slug`` and
            ``run_id`` already checked (:func:`recent_events` checks them).
        since: as for :func:`recent_events`.
        flow_slug: only this flow's runs.
        run_id: only this run.
        limit: at most this many events from before the first poll.
        poll_interval: seconds between polls when nothing is notified.
        overlap: how far back each poll reads again.
        batch: the most events one later poll reads.
    """
    for channel in _channels(run_id):
        conn.execute(sql.SQL("listen {}").format(sql.Identifier(channel)))
    cursor = _Cursor(since, set())
    size = max(1, limit)
    listener, renew_at = uuid.uuid4(), 0.0
    try:
        while True:
            if time.monotonic() >= renew_at:  # notified only while registered
                renewed = _register(conn, listener, flow_slug, run_id)
                renew_at = time.monotonic() + (_LISTEN_TTL / 3 if renewed else float("inf"))
            yield from _poll(conn, cursor, flow_slug, run_id, overlap, size)
            size = batch
            if any(True for _ in conn.notifies(timeout=poll_interval, stop_after=1)):
                for _ in conn.notifies(timeout=0.1):  # let a burst of notifications settle
                    pass
    finally:
        with suppress(psycopg.Error):
            conn.execute(query("listener_unwatch"), {"listener_id": listener, "run_id": None})


def _register(
    conn: psycopg.Connection[Any], listener: uuid.UUID, flow_slug: str | None, run_id: Any
) -> bool:
    """Register (or renew) as a listener of the followed tasks and run; False when this
    role or schema cannot (the poll alone then finds new events)."""
    flows = None if flow_slug is None else [flow_slug]
    params = {"listener_id": listener, "ttl_seconds": _LISTEN_TTL}
    try:
        conn.execute(query("listener_listen_tasks"), {**params, "flow_slugs": flows})
        if run_id is not None:
            conn.execute(query("listener_watch_run"), {**params, "run_id": run_id})
    except (errors.InsufficientPrivilege, errors.UndefinedFunction):
        return False
    return True


def _channels(run_id: uuid.UUID | None) -> list[str]:
    return ["pgflow_tasks", "pgflow_cancelled"] + ([f"pgflow_run_{run_id}"] if run_id else [])


def _poll(
    conn: psycopg.Connection[Any],
    cursor: _Cursor,
    flow_slug: str | None,
    run_id: uuid.UUID | None,
    overlap: timedelta,
    size: int,
) -> list[Event]:
    row = conn.execute(query("telemetry_now")).fetchone()
    now: datetime = row[0] if row else datetime.now(UTC)
    events = _fetch(conn, cursor.since, flow_slug, run_id, size)
    fresh = [e for e in events if e.key not in cursor.seen]
    floor = now - overlap
    if isinstance(cursor.since, datetime):
        floor = max(floor, cursor.since)
    if len(events) == size:  # cut by the size: never go back before what was read
        floor = max(floor, events[0].ts)
    cursor.since = floor
    cursor.seen = {e.key for e in events if e.ts >= floor}
    return fresh
