"""Knowing your flows: ``flows`` (what is deployed), ``inspect`` (a manifest) and ``diff``.

``pgflow diff`` exits 0 when code and the other side agree, 3 when they differ (a flow not
deployed counts as a difference), 1 on an error and 2 on a usage mistake, so CI can tell
"differs" from "broke". See docs/deploying.md.
"""

from __future__ import annotations

import os
from pathlib import Path

import click
from rich.table import Table
from rich.text import Text

from pgflow.cli._group import database_url_option, main, resolve_target
from pgflow.cli._render import console, echo_json
from pgflow.db.connection import connect
from pgflow.db.errors import describe_conninfo
from pgflow.db.target import DatabaseTarget
from pgflow.errors import PgflowError, UnknownFlowError
from pgflow.loader import load_flows
from pgflow.manifest import (
    DeployedFlow,
    FlowManifest,
    differences,
    from_database,
    from_flow,
    from_migrations,
    list_deployed,
    render_diff,
    render_manifest,
    render_missing,
)
from pgflow.models import RUN_STATUSES

__all__ = ["DIFFERENCES_EXIT_CODE", "diff", "flows", "inspect_command"]

DIFFERENCES_EXIT_CODE = 3
json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")


def where(target: DatabaseTarget) -> str:
    """The database as people should read it (never with its password)."""
    return "the embedded database" if target.is_embedded else describe_conninfo(target.url)


@main.command()
@json_option
@database_url_option
def flows(as_json: bool, database_url: str | None) -> None:
    """List the deployed flows: checksum, steps, creation time and runs by status.

    Counting runs reads the whole runs table once (fast up to millions of runs).
    """
    target = resolve_target(database_url)
    with connect(target.url) as conn:
        found = list_deployed(conn)
    if as_json:
        echo_json([f.model_dump(mode="json") for f in found])
    elif not found:
        click.echo(f"No flows are deployed in {where(target)}", err=True)
        click.echo("Hint: deploy some with `pgflow deploy FLOWS`", err=True)
    else:
        console().print(_flows_table(found))


def _flows_table(found: list[DeployedFlow]) -> Table:
    table = Table(box=None, pad_edge=False, header_style="bold")
    for column in ("flow", "checksum", "steps", "created", *RUN_STATUSES):
        right = column == "steps" or column in RUN_STATUSES
        table.add_column(column, justify="right" if right else "left", no_wrap=True)
    for flow in found:
        slug = Text(flow.flow_slug)
        if flow.status != "ready":
            slug.append(f" ({flow.status})", style="yellow")
        table.add_row(
            slug,
            flow.checksum[:12],
            str(flow.steps),
            flow.created_at.astimezone().strftime("%Y-%m-%d %H:%M:%S"),
            *(str(flow.runs[status]) for status in RUN_STATUSES),
        )
    return table


def is_code_reference(text: str) -> bool:
    """Whether ``text`` names code (a file or ``module[:attr]``) rather than a flow slug.

    Slugs hold letters, digits and ``_`` only, so a path separator, a dot, a colon or an
    existing file means code.
    """
    return any(mark in text for mark in ("/", os.sep, ".", ":")) or Path(text).exists()


@main.command(name="inspect")
@click.argument("reference", metavar="FLOWS|SLUG")
@json_option
@database_url_option
def inspect_command(reference: str, as_json: bool, database_url: str | None) -> None:
    """Show the manifest of flows in code (FLOWS) or of a deployed flow (SLUG).

    Steps in order with their type, dependencies, input and output types, options and
    conditions, and the checksum. A bare word is a deployed slug; name code as a file
    (flows.py) or a module (app.flows, app.flows:flow).
    """
    if is_code_reference(reference):
        manifests = [from_flow(flow, reference) for flow in load_flows(reference)]
    else:
        target = resolve_target(database_url)
        with connect(target.url) as conn:
            manifests = [from_database(conn, reference, where(target))]
    if as_json:
        echo_json([m.model_dump(mode="json") for m in manifests])
    else:
        click.echo("\n".join(render_manifest(m) for m in manifests), nl=False)


@main.command()
@click.argument("flows_ref", metavar="FLOWS")
@click.option(
    "--against",
    default="deployed",
    show_default=True,
    metavar="deployed|DIR",
    help="Compare with the deployed flows, or with what the migrations in DIR define.",
)
@database_url_option
@click.pass_context
def diff(ctx: click.Context, flows_ref: str, against: str, database_url: str | None) -> None:
    """Show every difference between the flows in FLOWS and what is deployed (or in DIR).

    Exit status: 0 no differences, 3 differences (a flow not deployed counts), 1 error.
    """
    code = [from_flow(flow, flows_ref) for flow in load_flows(flows_ref)]
    others = _deployed(code, database_url) if against == "deployed" else _migrations(against)
    outputs, differ = [], False
    for manifest in code:
        other = others.get(manifest.flow_slug)
        if other is None:
            outputs.append(render_missing(manifest, against))
            differ = True
            continue
        found = differences(other, manifest)
        differ = differ or bool(found)
        outputs.append(render_diff(other, manifest, found))
    click.echo("\n".join(outputs), nl=False)
    if differ:
        ctx.exit(DIFFERENCES_EXIT_CODE)


def _deployed(code: list[FlowManifest], database_url: str | None) -> dict[str, FlowManifest]:
    target = resolve_target(database_url)
    found: dict[str, FlowManifest] = {}
    with connect(target.url) as conn:
        for manifest in code:
            try:
                found[manifest.flow_slug] = from_database(conn, manifest.flow_slug, where(target))
            except UnknownFlowError:
                continue
    return found


def _migrations(against: str) -> dict[str, FlowManifest]:
    directory = Path(against)
    if not directory.is_dir():
        raise PgflowError(
            f"--against {against}: no such folder",
            hint="pass `--against deployed` or the folder of your compiled migrations "
            "(the one `pgflow compile FLOWS -o DIR` writes to)",
        )
    return from_migrations(directory)
