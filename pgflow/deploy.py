"""Deploying flows to a database: ``pgflow deploy`` and ``pgflow run`` build on this.

Flows are immutable: a slug keeps its shape for life. :func:`deploy_flows` therefore

* creates a flow that is not deployed yet (or finishes one whose SQL stopped midway),
* re-applies an identical flow as a no-op, apart from runtime options, which it updates and
  reports (``options updated``),
* refuses a changed shape, naming the first difference and suggesting a new slug, and leaves
  the database untouched (production mode), or
* with ``dev=True`` recreates a changed flow: it deletes the old definition *and its runs*
  and applies the new one, reporting how many runs it deleted.

Everything happens in one transaction: either every flow is deployed or none is. Before
looking at a flow it takes that flow's advisory lock exclusively, as ``create_flow`` and
``delete_flow_and_data`` do (``start_flow`` takes it shared), in slug order so that
deployers of several flows cannot deadlock. Deployers of one slug therefore serialise (the
second inspects what the first committed; the last one wins), and a run started meanwhile
is committed before the flow is inspected, so a re-create deletes and counts it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import psycopg
from psycopg.rows import dict_row

from pgflow.compiler import compile_flow
from pgflow.db.errors import wrap_db_errors
from pgflow.dsl.flow import Flow
from pgflow.errors import ShapeMismatchError
from pgflow.shape import FlowShape, diff
from pgflow.sql import query

Action = Literal["created", "unchanged", "options updated", "recreated", "refused"]


@dataclass(frozen=True, slots=True)
class DeployResult:
    """What deploying one flow did.

    Attributes:
        flow_slug: the flow.
        checksum: the checksum of the flow's shape as deployed now.
        action: created, unchanged, options updated, recreated or refused.
        detail: a human sentence (the difference for refused/recreated flows, the changed
            options, the number of runs deleted).
        runs_deleted: runs removed by a development re-create.
    """

    flow_slug: str
    checksum: str
    action: Action
    detail: str = ""
    runs_deleted: int = 0


@dataclass(frozen=True, slots=True)
class _Plan:
    flow: Flow
    sql: str
    checksum: str
    shape: dict[str, Any]
    deployed_checksum: str | None
    difference: str | None
    partial: bool


def deploy_flows(
    conn: psycopg.Connection[Any], flows: Sequence[Flow], *, dev: bool = False
) -> list[DeployResult]:
    """Deploy flows in one transaction and say what happened to each.

    Args:
        conn: a connection to a database with the pgflow schema installed.
        flows: the flows to deploy, in order.
        dev: recreate flows whose shape changed, deleting their runs.

    Raises:
        ShapeMismatchError: (without ``dev``) a flow's shape differs from the deployed one;
            nothing was changed. ``results`` on the error lists every flow's outcome.
    """
    with wrap_db_errors(), conn.transaction():
        for slug in sorted({flow.slug for flow in flows}):
            _fetch_all(conn, "deploy_lock", slug=slug)
        plans = [_plan(conn, flow) for flow in flows]
        refused = [p for p in plans if p.difference is not None]
        if refused and not dev:
            raise _refusal(plans)
        return [_apply(conn, plan) for plan in plans]


def _plan(conn: psycopg.Connection[Any], flow: Flow) -> _Plan:
    compiled = compile_flow(flow)
    shape = compiled.shape.to_json()
    row = _fetch_one(conn, "deployed_flow", slug=flow.slug)
    deployed = row["checksum"] if row else None
    difference = None
    if row and deployed != compiled.checksum:
        found = FlowShape.from_json(row["shape"])
        difference = (
            diff(found, compiled.shape, names=("deployed", "new")) or "the checksums differ"
        )
    partial = bool(row) and row["status"] == "defining"
    return _Plan(flow, compiled.sql, compiled.checksum, shape, deployed, difference, partial)


def _apply(conn: psycopg.Connection[Any], plan: _Plan) -> DeployResult:
    slug = plan.flow.slug
    if plan.deployed_checksum is None or (plan.partial and plan.difference is None):
        _execute_script(conn, plan)
        detail = "finished a partly applied definition" if plan.partial else ""
        return DeployResult(slug, plan.checksum, "created", detail)
    if plan.difference is not None:
        deleted = _fetch_one(conn, "deploy_delete_flow", slug=slug)["runs_deleted"]
        _execute_script(conn, plan)
        detail = f"{plan.difference}; deleted {deleted} run(s)"
        return DeployResult(slug, plan.checksum, "recreated", detail, deleted)
    before = deployed_options(conn, slug)
    _execute_script(conn, plan)
    changes = changed_options(before, deployed_options(conn, slug))
    if changes:
        return DeployResult(slug, plan.checksum, "options updated", "; ".join(changes))
    return DeployResult(slug, plan.checksum, "unchanged")


def _refusal(plans: Sequence[_Plan]) -> ShapeMismatchError:
    results = [
        DeployResult(p.flow.slug, p.deployed_checksum or p.checksum, "refused", p.difference)
        if p.difference is not None
        else DeployResult(p.flow.slug, p.checksum, "unchanged", "not applied")
        for p in plans
    ]
    lines = [
        f"flow {p.flow.slug!r} is deployed with a different shape "
        f"(deployed checksum {p.deployed_checksum}, new checksum {p.checksum}): {p.difference}"
        for p in plans
        if p.difference is not None
    ]
    first = next(p.flow.slug for p in plans if p.difference is not None)
    return ShapeMismatchError(
        "\n".join(lines) + "\nNothing was deployed.",
        hint=(
            f"Flows are immutable: deploy the new shape under a new slug such as "
            f"{first + '_v2'!r}, or in development run `pgflow deploy --dev` to recreate "
            "the flow (this deletes its runs)."
        ),
        flow_slug=first,
        results=results,
    )


def deployed_options(conn: psycopg.Connection[Any], slug: str) -> dict[str, Any]:
    """The runtime configuration of a deployed flow (options, tunables, limits, schedules)
    by name, to compare before and after applying its SQL (:func:`changed_options`)."""
    rows = _fetch_all(conn, "deploy_options", slug=slug)
    rows += _fetch_all(conn, "deploy_limits", slug=slug)
    rows += _fetch_all(conn, "deploy_schedules", slug=slug)
    return {row["name"]: row["value"] for row in rows}


def changed_options(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """``name old -> new`` for each setting that differs (``none`` when absent)."""
    return [
        f"{name} {before.get(name, 'none')} -> {after.get(name, 'none')}"
        for name in [*after, *(name for name in before if name not in after)]
        if before.get(name) != after.get(name)
    ]


def _execute_script(conn: psycopg.Connection[Any], plan: _Plan) -> None:
    # compiled SQL is a script of literal-only statements: run it without parameters
    conn.execute(plan.sql.encode())
    # the compiled SQL sets limits and schedules only when there are some
    if not plan.flow.limits:
        _fetch_all(conn, "deploy_clear_limits", slug=plan.flow.slug)
    if not plan.flow.schedules:
        _fetch_all(conn, "deploy_clear_schedules", slug=plan.flow.slug)


def _fetch_all(conn: psycopg.Connection[Any], name: str, **params: Any) -> list[dict[str, Any]]:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(query(name), params)
        return cur.fetchall()


def _fetch_one(conn: psycopg.Connection[Any], name: str, **params: Any) -> dict[str, Any]:
    rows = _fetch_all(conn, name, **params)
    return rows[0] if rows else {}
