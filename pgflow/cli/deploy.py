"""``pgflow deploy``: apply flows to a database (production default, or ``--dev``)."""

from __future__ import annotations

import click
from rich.console import Console
from rich.table import Table

from pgflow.cli._group import database_url_option, main, resolve_target
from pgflow.cli.shards import print_shard_deploys, resolve_shards, shard_option
from pgflow.compiler.scripts import CompiledScript, is_sql_reference, read_compiled
from pgflow.db.connection import connect
from pgflow.db.schema import install as install_schema
from pgflow.deploy import DeployResult, deploy_flows
from pgflow.deploy_sql import deploy_scripts
from pgflow.dsl.flow import Flow
from pgflow.errors import ShapeMismatchError
from pgflow.loader import load_flows
from pgflow.sharding import deploy_to_shards

__all__ = ["deploy"]

_STYLE = {
    "created": "green",
    "unchanged": "dim",
    "options updated": "cyan",
    "recreated": "yellow",
    "refused": "bold red",
}


@main.command()
@click.argument("flows_spec", metavar="FLOWS")
@click.option(
    "--dev", is_flag=True, help="Recreate flows whose shape changed (deletes their runs)."
)
@click.option("--install/--no-install", default=True, help="Install or upgrade the schema first.")
@shard_option
@database_url_option
def deploy(
    flows_spec: str,
    dev: bool,
    install: bool,
    shard_urls: tuple[str, ...],
    database_url: str | None,
) -> None:
    """Deploy the flows in FLOWS (a file, a module, optionally :attr), or the compiled SQL
    of a .sql file or of a folder of them.

    Without --dev a flow whose shape changed is refused and nothing is deployed:
    flows are immutable, so ship the new shape under a new slug (x_v2). With --shard, or
    given a pgflow proxy's URL, every shard gets the flows: all shards or none.
    """
    sql = is_sql_reference(flows_spec)
    scripts = read_compiled(flows_spec) if sql else []
    flows = [] if sql else load_flows(flows_spec)
    shards, resolved = resolve_shards(shard_urls, database_url)
    if shards is not None:
        _deploy_shards(shards, flows, scripts, dev=dev, install=install)
        return
    target = resolved or resolve_target(database_url)
    if install:
        install_schema(target.url)
    with connect(target.url) as conn:
        try:
            if sql:
                results = deploy_scripts(conn, scripts, dev=dev)
            else:
                results = deploy_flows(conn, flows, dev=dev)
        except ShapeMismatchError as exc:
            _print_table(exc.results)
            raise
    _print_table(results)


def _deploy_shards(
    shards: list[str], flows: list[Flow], scripts: list[CompiledScript], *, dev: bool, install: bool
) -> None:
    try:
        deploys = deploy_to_shards(shards, flows, scripts, dev=dev, install=install)
    except ShapeMismatchError as exc:
        _print_table(exc.results)
        raise
    print_shard_deploys(deploys, _STYLE)


def _print_table(results: list[DeployResult]) -> None:
    if not results:
        return
    table = Table(title="pgflow deploy")
    for column in ("flow", "checksum", "action", "detail"):
        table.add_column(column)
    for r in results:
        style = _STYLE[r.action]
        table.add_row(r.flow_slug, r.checksum[:12], f"[{style}]{r.action}[/]", r.detail)
    Console(stderr=True).print(table)
