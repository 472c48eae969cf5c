"""CLI commands on flows: ``compile``, ``check``, ``graph``.

Each command loads ``FLOWS`` (``flows.py``, ``app.flows``, optionally ``:attr``) and calls
one library function; errors are :class:`~pgflow.errors.PgflowError` and exit with 1.
"""

from __future__ import annotations

from pathlib import Path

import click

from pgflow.cli._group import database_url_option, main, resolve_target
from pgflow.compiler import compile_flow
from pgflow.compiler.graph import GraphFormat, render_graph
from pgflow.compiler.migrations import write_migrations
from pgflow.db.connection import connect
from pgflow.doctor import Finding, check_database, check_definitions, liveness_findings
from pgflow.dsl.flow import Flow
from pgflow.errors import PgflowError
from pgflow.loader import load_flows

__all__ = ["check", "compile_command", "graph"]

flows_argument = click.argument("flows_ref", metavar="FLOWS")
# Accepted on every command so scripts can pass it uniformly; unused offline.
offline_database_url = click.option("--database-url", hidden=True, default=None)


@main.command(name="compile")
@flows_argument
@click.option(
    "-o",
    "--output",
    "output_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Write one <UTC timestamp>_create_<slug>.sql per flow into this migrations folder.",
)
@offline_database_url
def compile_command(flows_ref: str, output_dir: Path | None, database_url: str | None) -> None:
    """Compile FLOWS to SQL (stdout, or migration files in a folder).

    With -o, earlier *.sql files in the folder are read first: a flow they already define
    with the same shape is skipped, a changed shape is refused (flows are immutable).
    """
    compiled = [compile_flow(flow) for flow in load_flows(flows_ref)]
    if output_dir is None:
        click.echo("\n".join(flow.sql for flow in compiled), nl=False)
        return
    for outcome in write_migrations(compiled, output_dir):
        if outcome.written:
            click.echo(f"wrote {outcome.path}")
        else:
            click.echo(
                f"flow {outcome.flow_slug!r} is already defined with the same shape in "
                f"{outcome.path}; nothing written"
            )


@main.command()
@flows_argument
@database_url_option
@click.option("--offline", is_flag=True, help="Check definitions only; skip the database.")
def check(flows_ref: str, database_url: str | None, offline: bool) -> None:
    """Check FLOWS: definitions and types across edges, then (unless --offline) the
    database: reachable, schema version, and whether the deployed shapes match."""
    flows = load_flows(flows_ref)
    findings = check_definitions(flows)
    if not offline:
        findings += _database_findings(database_url, flows)
    for finding in findings:
        _show(finding)
    problems = [f for f in findings if f.level == "problem"]
    if problems:
        raise PgflowError(f"check found {len(problems)} problem(s)", hint=problems[0].hint or None)


def _database_findings(database_url: str | None, flows: list[Flow]) -> list[Finding]:
    try:
        target = resolve_target(database_url)
        with connect(target.url) as conn:
            found = check_database(conn, flows)
            if not any(f.level == "problem" and f.message.startswith("schema:") for f in found):
                found += liveness_findings(conn, flows)
    except PgflowError as exc:
        return [Finding("problem", f"database: {exc.message}", exc.hint)]
    return [
        Finding("ok", f"database: reachable, {target.describe().removeprefix('Using ')}"),
        *found,
    ]


def _show(finding: Finding) -> None:
    mark = {"ok": "ok  ", "info": "--  ", "warning": "WARN", "problem": "FAIL"}[finding.level]
    click.echo(f"{mark} {finding.message}")
    if finding.hint and finding.level != "ok":
        click.echo(f"     hint: {finding.hint}")


@main.command()
@flows_argument
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["mermaid", "dot"]),
    default="mermaid",
    show_default=True,
    help="Diagram language.",
)
@offline_database_url
def graph(flows_ref: str, fmt: GraphFormat, database_url: str | None) -> None:
    """Print the DAG of FLOWS as a Mermaid or Graphviz DOT diagram."""
    click.echo(render_graph(load_flows(flows_ref), fmt), nl=False)
