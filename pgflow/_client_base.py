"""The I/O-free half of :class:`pgflow.Client` and :class:`pgflow.AsyncClient`.

Both twins build the same query parameters and read the same rows through this module,
so their behaviour cannot drift apart: only the ``await``s differ (httpx's pattern).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from psycopg import sql
from psycopg.types.json import Jsonb
from pydantic import TypeAdapter

from pgflow._input_schema import check_input
from pgflow._json import dumps
from pgflow.db.retry import is_transient
from pgflow.dsl.flow import Flow
from pgflow.dsl.options import PRIORITY_RANGE
from pgflow.errors import ConfigurationError, InvalidInputError, RunTimeoutError, UnknownRunError
from pgflow.models import RUN_STATUSES, Run
from pgflow.sql import query
from pgflow.telemetry.hooks import StartScope

__all__ = [
    "check_source",
    "check_start",
    "deadline_after",
    "is_proxy",
    "list_params",
    "list_query",
    "listen_statements",
    "may_reconnect",
    "poll_delay",
    "remaining",
    "run_from_row",
    "run_uuid",
    "start_params",
    "timeout_error",
    "traced",
]

_ANY: TypeAdapter[Any] = TypeAdapter(Any)


def check_source(connection: object, pool: object) -> None:
    """Refuse a client given both a connection and a pool."""
    if connection is not None and pool is not None:
        raise ConfigurationError(
            "pass either connection= or pool= to the client, not both",
            hint="keep the one the client should use",
        )


def run_uuid(run_id: uuid.UUID | str) -> uuid.UUID:
    """Parse a run id given as a UUID or its text.

    Raises:
        UnknownRunError: it is not a UUID (so no run can have it).
    """
    if isinstance(run_id, uuid.UUID):
        return run_id
    try:
        return uuid.UUID(str(run_id).strip())
    except ValueError:
        raise UnknownRunError(
            f"{run_id!r} is not a run id: run ids are UUIDs",
            hint="copy the id `pgflow start` printed, or find it with `pgflow runs`",
            run_id=str(run_id),
        ) from None


def start_params(
    flow_or_slug: Flow | str, input: Any, run_id: Any, priority: int | None = None
) -> dict[str, Any]:
    """Validate a start request (before any SQL) and return the query parameters.

    Raises:
        InvalidInputError: the input fails the flow's input model or is not JSON, or the
            priority is not an integer from -100 to 100.
        UnknownRunError: ``run_id`` is not a UUID.
    """
    if isinstance(flow_or_slug, Flow):
        slug, value = flow_or_slug.slug, flow_or_slug.dump_input(input)
    else:
        slug, value = str(flow_or_slug), _json_value(flow_or_slug, input)
    rid = None if run_id is None else run_uuid(run_id)
    params = {"flow_slug": slug, "input": _encoded(slug, value), "run_id": rid}
    return {**params, "priority": _priority(slug, priority)}


def _priority(slug: str, priority: int | None) -> int | None:
    low, high = PRIORITY_RANGE
    if priority is None or (
        not isinstance(priority, bool) and isinstance(priority, int) and low <= priority <= high
    ):
        return priority
    raise InvalidInputError(
        f"flow {slug!r}: priority {priority!r} is not an integer from {low} to {high}",
        hint="pass e.g. priority=10 (higher first), or leave it out for the flow's own",
        flow_slug=slug,
    )


def traced(params: dict[str, Any], scope: StartScope) -> dict[str, Any]:
    """The start parameters with the trace context to store with the run (None: none)."""
    context = scope.trace_context
    return {**params, "trace_context": Jsonb(context) if context else None}


def check_start(params: dict[str, Any], schema_text: str | None) -> None:
    """Check a start by slug against the input schema stored with its flow (None: none).

    Raises:
        InvalidInputError: the input does not match; every error is listed.
        DefinitionError: the stored schema is not a valid JSON Schema.
    """
    check_input(params["flow_slug"], schema_text, params["input"].obj)


def _not_json(slug: object, exc: Exception) -> InvalidInputError:
    return InvalidInputError(
        f"the input for flow {slug!r} cannot be turned into JSON: {exc}",
        hint="pass JSON-compatible data (dicts, lists, strings, numbers) or a pydantic model",
        flow_slug=str(slug),
    )


def _json_value(slug: object, value: Any) -> Any:
    try:
        return _ANY.dump_python(value, mode="json")
    except ValueError as exc:  # PydanticSerializationError, circular, too deep, bad UTF-8
        raise _not_json(slug, exc) from exc


def _encoded(slug: object, value: Any) -> Jsonb:
    """Encode the input now, so a value JSON cannot hold fails here, not inside the query."""
    try:
        encoded = dumps(value)
    except (TypeError, ValueError) as exc:  # e.g. an integer too long to print
        raise _not_json(slug, exc) from exc
    return Jsonb(value, dumps=lambda _: encoded)  # .obj stays the value; sent as encoded


def list_params(
    flow_slug: str | None,
    status: str | None,
    limit: int,
    since: datetime | timedelta | None = None,
) -> dict[str, Any]:
    """Check the filters of ``runs()`` and return the query parameters.

    Raises:
        InvalidInputError: an unknown status, a limit below 1, or a ``since`` that is not
            an aware datetime or a non-negative timedelta.
    """
    if status is not None and status not in RUN_STATUSES:
        raise InvalidInputError(
            f"unknown run status {status!r}",
            hint=f"use one of: {', '.join(RUN_STATUSES)}",
        )
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise InvalidInputError(f"limit must be a positive integer, got {limit!r}", hint="e.g. 50")
    since_at, since_ago = _since(since)
    return {
        "flow_slug": flow_slug,
        "status": status,
        "limit": limit,
        "since_at": since_at,
        "since_ago": since_ago,
    }


def _since(since: object) -> tuple[datetime | None, timedelta | None]:
    """``since`` as (a moment, or a duration back from the server's clock)."""
    if since is None:
        return None, None
    if isinstance(since, datetime) and since.utcoffset() is not None:
        return since, None
    if isinstance(since, timedelta) and since >= timedelta(0):
        return None, since
    raise InvalidInputError(
        f"since must be a timezone-aware datetime or a timedelta of at least 0, got {since!r}",
        hint="e.g. since=timedelta(hours=1) or since=datetime(2026, 1, 1, tzinfo=UTC)",
    )


def is_proxy(row: Any) -> bool:
    """Read the ``proxy_detect`` row: whether the database is a pgflow proxy, whose
    public functions PL/Proxy routes to shards (docs/sharding.md)."""
    if row is None:
        return False
    return bool(row["proxy"] if isinstance(row, Mapping) else row[0])


def list_query(proxied: bool) -> str:
    """The query ``runs()`` reads with: a proxy has no runs table, it merges every shard's
    newest runs in ``pgflow.list_runs``."""
    return "client_list_runs_proxied" if proxied else "client_list_runs"


def listen_statements(run_id: uuid.UUID) -> tuple[sql.Composed, sql.Composed]:
    """``LISTEN`` and ``UNLISTEN`` of the run's event channel ``pgflow_run_<run_id>``."""
    channel = sql.Identifier(f"pgflow_run_{run_id}")
    return (
        sql.SQL(query("listen_channel")).format(channel=channel),
        sql.SQL(query("unlisten_channel")).format(channel=channel),
    )


def run_from_row(row: Mapping[str, Any], run_id: uuid.UUID) -> Run:
    """Build a :class:`Run` from the ``client_get_run`` row: the document and its values."""
    document = row["document"]
    if document is None:  # the SQL raises PGF07 first; this guards a changed schema
        raise UnknownRunError(f"unknown run {run_id}", hint="check the run id; see `pgflow runs`")
    run = {**document["run"], "input": row["input"], "output": row["output"]}
    steps = [
        {**step, "output": output}
        for step, output in zip(document["steps"], row["step_outputs"], strict=True)
    ]
    return Run.from_states({"run": run, "steps": steps})


def may_reconnect(exc: BaseException, external: object, deadline: float | None) -> bool:
    """Whether ``watch`` should reconnect after ``exc`` and carry on.

    True for a lost connection or a restarting server (see
    :func:`pgflow.db.retry.is_transient`) while time is left, unless the caller passed
    its own connection (which the client cannot replace).
    """
    if external is not None or not is_transient(exc):
        return False
    left = remaining(deadline)
    return left is None or left > 0


def deadline_after(timeout: float | None) -> float | None:
    """The monotonic deadline ``timeout`` seconds from now (None: wait forever)."""
    return None if timeout is None else time.monotonic() + max(0.0, timeout)


POLL_INTERVAL = 0.25
"""Seconds between reads of a run watched without LISTEN (through a pooler)."""


def poll_delay(deadline: float | None) -> float | None:
    """How long to sleep before the next read of a polled watch; None: the deadline passed."""
    left = remaining(deadline)
    if left is None:
        return POLL_INTERVAL
    return None if left <= 0 else min(POLL_INTERVAL, left)


def remaining(deadline: float | None) -> float | None:
    """Seconds left until ``deadline`` (None: no deadline), never below 0."""
    return None if deadline is None else max(0.0, deadline - time.monotonic())


def timeout_error(run: Run, timeout: float) -> RunTimeoutError:
    """The error for a run still live after ``timeout`` seconds."""
    live = [f"{s.step_slug} {s.status}" for s in run.steps if not s.is_finished]
    where = f" (still live: {', '.join(live)})" if live else ""
    return RunTimeoutError(
        f"run {run.run_id} of flow {run.flow_slug!r} did not finish within {timeout:g} s{where}",
        hint="wait longer, and check that a worker serves this flow (`pgflow worker FLOWS`); "
        f"`pgflow status {run.run_id}` shows every step",
        run=run,
        run_id=run.run_id,
        flow_slug=run.flow_slug,
    )
