"""``pgflow check`` and the worker's start-up check: definitions offline, then the database.

The compiler and the DSL validate definitions without a database; this module adds what
only a database can tell (schema version, deployed shapes), for ``pgflow check`` and for
the warnings a worker prints when it starts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import psycopg
from psycopg.rows import dict_row

from pgflow._words import counted
from pgflow.db.schema import status as schema_status
from pgflow.dsl.flow import Flow
from pgflow.errors import PgflowError
from pgflow.shape import FlowShape, diff, shape_of
from pgflow.sql import query
from pgflow.telemetry.workers import LIVE_WITHIN, FlowLiveness, flow_liveness

Level = Literal["ok", "info", "warning", "problem"]


@dataclass(frozen=True, slots=True)
class Finding:
    """One line of the check report."""

    level: Level
    message: str
    hint: str | None = None


def check_definitions(flows: Sequence[Flow]) -> list[Finding]:
    """Report each flow's definition (already validated by loading it, types included)."""
    return [
        Finding(
            "ok",
            f"flow {flow.slug!r}: {counted(len(flow.steps), 'step')}, definitions and types across "
            f"edges ok (checksum {shape_of(flow).checksum[:12]})",
        )
        for flow in flows
    ]


def check_database(conn: psycopg.Connection[Any], flows: Sequence[Flow]) -> list[Finding]:
    """Report the schema version and, per flow, whether the deployed shape matches."""
    try:
        state = schema_status(conn)
    except PgflowError as exc:
        return [Finding("problem", f"schema: {exc.message}", exc.hint)]
    if state.version is None:
        return [Finding("problem", "schema: pgflow is not installed", "run `pgflow install`")]
    findings = [_schema_finding(state.version, state.latest)]
    if state.version >= HISTORY_PARTITIONS:
        findings += history_findings(conn)
    return findings + [_flow_finding(conn, flow) for flow in flows]


HISTORY_PARTITIONS = 5
"""The schema version whose run history is partitioned by month (docs/scaling.md)."""
DEFAULT_PARTITION_WARN = 1_000_000
"""Runs in the default history partition past which creating a month's partition pauses."""


def history_findings(conn: psycopg.Connection[Any]) -> list[Finding]:
    """Whether next month has its history partition, and how big the default one is."""
    try:
        with conn.cursor(row_factory=dict_row) as cur:
            rows = cur.execute(query("doctor_history_partitions")).fetchall()
    except psycopg.errors.InsufficientPrivilege:
        return [Finding("info", "history partitions: not checked (this role may not list them)")]
    months = {row["month"]: row["runs"] for row in rows}
    nxt = next(row["next_month"] for row in rows)
    findings = []
    if nxt not in months:
        findings.append(
            Finding(
                "warning",
                f"history partitions: next month ({nxt}) has none yet; its runs would go to the "
                "default partition and could not be dropped by month",
                "workers create them every retention_interval (is it 0 on every worker?); "
                "or run `select pgflow.create_history_partitions(2)` as the schema owner",
            )
        )
    else:
        findings.append(
            Finding("ok", f"history partitions: up to {max(set(months) - {'default'})}")
        )
    crowded = months.get("default") or 0
    if crowded >= DEFAULT_PARTITION_WARN:
        findings.append(
            Finding(
                "info",
                f"history partitions: about {crowded:,} runs in the default partition (history "
                "from before partitioning, or ids that are not UUIDv7); creating each month's "
                "partition reads it under a lock",
                "prune what you no longer need: `pgflow prune --older-than ...`",
            )
        )
    return findings


def _schema_finding(version: int, latest: int) -> Finding:
    if version < latest:
        return Finding(
            "problem",
            f"schema: version {version} installed, this package ships {latest}",
            "run `pgflow install` to upgrade",
        )
    return Finding("ok", f"schema: version {version} installed (up to date)")


def _flow_finding(conn: psycopg.Connection[Any], flow: Flow) -> Finding:
    found = _deployed(conn, flow.slug)
    if found is None:
        return Finding(
            "info",
            f"flow {flow.slug!r}: not deployed",
            "deploy it with `pgflow deploy` or apply its compiled SQL",
        )
    deployed, checksum = found
    local = shape_of(flow)
    if checksum == local.checksum:
        return Finding("ok", f"flow {flow.slug!r}: deployed shape matches ({local.checksum[:12]})")
    return Finding(
        "problem",
        f"flow {flow.slug!r}: the deployed shape differs (checksum {checksum} in the "
        f"database, {local.checksum} in the code): "
        f"{diff(deployed, local, names=('database', 'code'))}",
        f"flows are immutable: deploy the change under a new slug such as {flow.slug + '_v2'!r}",
    )


def _deployed(conn: psycopg.Connection[Any], slug: str) -> tuple[FlowShape, str] | None:
    """The deployed shape and checksum, or None when not deployed."""
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(query("deployed_flow"), {"slug": slug}).fetchone()
    return None if row is None else (FlowShape.from_json(row["shape"]), row["checksum"])


def liveness_findings(conn: psycopg.Connection[Any], flows: Sequence[Flow]) -> list[Finding]:
    """Per deployed flow, whether a live worker serves it (a warning when none does).

    Live: not stopped, with a heartbeat within the last ``LIVE_WITHIN`` (three default
    heartbeat intervals; docs/telemetry.md). A role that may not read ``pgflow.workers``
    gets one info line instead.
    """
    deployed = [flow.slug for flow in flows if _deployed(conn, flow.slug) is not None]
    try:
        found = flow_liveness(conn, deployed)
    except psycopg.errors.InsufficientPrivilege:
        return [Finding("info", "workers: not checked (this role may not read pgflow.workers)")]
    return [_liveness_finding(flow) for flow in found]


def _liveness_finding(flow: FlowLiveness) -> Finding:
    if flow.live:
        return Finding("ok", f"flow {flow.flow_slug!r}: {counted(flow.live, 'live worker')}")
    seen = (
        "no worker has served it yet"
        if flow.last_seen is None
        else f"last heartbeat of a worker serving it: {flow.last_seen:%Y-%m-%d %H:%M:%S %Z}"
    )
    return Finding(
        "warning",
        f"flow {flow.flow_slug!r}: no live worker serves it ({seen}); its runs wait",
        "start one with `pgflow worker FLOWS` (live: a heartbeat within the last "
        f"{round(LIVE_WITHIN.total_seconds())} s)",
    )


def deployment_warnings(conn: psycopg.Connection[Any], flows: Sequence[Flow]) -> list[str] | None:
    """What a worker of ``flows`` should warn about: flows not deployed or deployed changed.

    None when the role may not inspect the definitions: a least-privilege worker role
    (pgflow_worker) runs flows without reading any table, so that is no problem.
    """
    row = conn.execute(query("doctor_can_inspect")).fetchone()
    if row is not None and not row[0]:
        return None
    findings = check_database(conn, flows)
    return [f"{f.message} ({f.hint})" if f.hint else f.message for f in findings if f.level != "ok"]
