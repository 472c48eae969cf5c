"""Deploying compiled SQL files (``pgflow deploy FILE.sql|DIR``), with the rules and the
report of :mod:`pgflow.deploy`.

The flows the files define are planned first, each under its advisory lock taken in slug
order: a flow not deployed yet is created, an identical one keeps its runs (its options are
updated and reported), a changed one is refused before anything is applied, or with
``dev=True`` deleted with its runs and created again. Then the files' pgflow calls run in
file order. Everything happens in one transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.rows import dict_row

from pgflow.compiler.defined import DefinedFlow
from pgflow.compiler.scripts import CompiledScript
from pgflow.db.errors import wrap_db_errors
from pgflow.deploy import DeployResult, changed_options, deployed_options
from pgflow.errors import ShapeMismatchError
from pgflow.shape import FlowShape, diff
from pgflow.sql import query

__all__ = ["deploy_scripts"]


@dataclass(frozen=True, slots=True)
class _Plan:
    flow: DefinedFlow
    deployed_checksum: str | None
    difference: str | None
    partial: bool


def deploy_scripts(
    conn: psycopg.Connection[Any], scripts: Sequence[CompiledScript], *, dev: bool = False
) -> list[DeployResult]:
    """Apply compiled files in one transaction and say what happened to each flow.

    Raises:
        ShapeMismatchError: (without ``dev``) a flow's shape differs from the deployed one;
            nothing was changed. ``results`` on the error lists every flow's outcome.
    """
    flows = {slug: flow for script in scripts for slug, flow in script.flows.items()}
    with wrap_db_errors(), conn.transaction():
        for slug in sorted(flows):
            _rows(conn, "deploy_lock", slug=slug)
        plans = [_plan(conn, flow) for flow in flows.values()]
        if not dev and any(p.difference is not None for p in plans):
            raise _refusal(plans)
        deleted = {p.flow.flow_slug: _delete(conn, p) for p in plans if p.difference is not None}
        before = {p.flow.flow_slug: deployed_options(conn, p.flow.flow_slug) for p in plans}
        for script in scripts:
            for statement in script.statements:
                conn.execute(statement.encode())  # literal-only calls: no parameters
        return [_result(p, deleted, before[p.flow.flow_slug], conn) for p in plans]


def _plan(conn: psycopg.Connection[Any], flow: DefinedFlow) -> _Plan:
    rows = _rows(conn, "deployed_flow", slug=flow.flow_slug)
    if not rows:
        return _Plan(flow, None, None, False)
    row = rows[0]
    difference = None
    if row["checksum"] != flow.checksum:
        found = FlowShape.from_json(row["shape"])
        difference = diff(found, flow.shape, names=("deployed", "new")) or "the checksums differ"
    return _Plan(flow, row["checksum"], difference, row["status"] == "defining")


def _delete(conn: psycopg.Connection[Any], plan: _Plan) -> int:
    return int(_rows(conn, "deploy_delete_flow", slug=plan.flow.flow_slug)[0]["runs_deleted"])


def _result(
    plan: _Plan, deleted: dict[str, int], before: dict[str, Any], conn: psycopg.Connection[Any]
) -> DeployResult:
    slug, checksum = plan.flow.flow_slug, plan.flow.checksum
    if plan.deployed_checksum is None:
        return DeployResult(slug, checksum, "created")
    if slug in deleted:
        detail = f"{plan.difference}; deleted {deleted[slug]} run(s)"
        return DeployResult(slug, checksum, "recreated", detail, deleted[slug])
    if plan.partial:
        return DeployResult(slug, checksum, "created", "finished a partly applied definition")
    changes = changed_options(before, deployed_options(conn, slug))
    if changes:
        return DeployResult(slug, checksum, "options updated", "; ".join(changes))
    return DeployResult(slug, checksum, "unchanged")


def _refusal(plans: Sequence[_Plan]) -> ShapeMismatchError:
    refused = [p for p in plans if p.difference is not None]
    results = [
        DeployResult(p.flow.flow_slug, p.deployed_checksum or "", "refused", p.difference)
        if p.difference is not None
        else DeployResult(p.flow.flow_slug, p.flow.checksum, "unchanged", "not applied")
        for p in plans
    ]
    lines = [
        f"flow {p.flow.flow_slug!r} ({p.flow.path}) is deployed with a different shape "
        f"(deployed checksum {p.deployed_checksum}, new checksum {p.flow.checksum}): "
        f"{p.difference}"
        for p in refused
    ]
    first = refused[0].flow.flow_slug
    return ShapeMismatchError(
        "\n".join(lines) + "\nNothing was deployed.",
        checksum_expected=refused[0].deployed_checksum,
        checksum_actual=refused[0].flow.checksum,
        hint=(
            f"Flows are immutable: deploy the new shape under a new slug such as "
            f"{first + '_v2'!r}, or in development run `pgflow deploy --dev` to recreate "
            "the flow (this deletes its runs)."
        ),
        flow_slug=first,
        results=results,
    )


def _rows(conn: psycopg.Connection[Any], name: str, **params: Any) -> list[dict[str, Any]]:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(query(name), params)
        return cur.fetchall() if cur.description else []
