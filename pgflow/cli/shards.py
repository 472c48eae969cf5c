"""Sharding in the CLI (docs/sharding.md): ``--shard``, ``install --proxy``, ``pgflow shards``.

``install``, ``deploy`` and ``worker`` take ``--shard URL`` (repeated, in routing order; or
``PGFLOW_SHARDS``, separated by spaces). Without it, a ``--database-url`` that names a
pgflow proxy stands for the proxy's shards, so one URL is enough for every command: the
shards' URLs are then the ones the proxy's server uses (without a password: give the
workers ``~/.pgpass`` or ``PGPASSWORD``).
"""

from __future__ import annotations

from typing import Any

import click
from psycopg.rows import dict_row
from rich.console import Console
from rich.table import Table

from pgflow.cli._group import database_url_option, main, resolve_target
from pgflow.db.connection import connect
from pgflow.db.errors import describe_conninfo
from pgflow.db.schema import install as install_schema
from pgflow.db.target import DatabaseTarget
from pgflow.deploy import DeployResult
from pgflow.errors import ConfigurationError, DatabaseError, PgflowError, SchemaError
from pgflow.sharding import ShardDeploy, install_proxy, proxy_shard_urls, shard_list
from pgflow.sharding.shards import on_shard
from pgflow.sql import query

__all__ = [
    "print_shard_deploys",
    "proxy_install",
    "resolve_shards",
    "shard_option",
    "sharded_install",
    "shards",
]

shard_option = click.option(
    "--shard",
    "shard_urls",
    multiple=True,
    metavar="URL",
    envvar="PGFLOW_SHARDS",
    help="A shard's database URL; repeat for each shard, in routing order (env "
    "PGFLOW_SHARDS, space-separated). Default: the shards of the database URL when it "
    "names a pgflow proxy.",
)


def resolve_shards(
    shard_urls: tuple[str, ...], database_url: str | None
) -> tuple[list[str] | None, DatabaseTarget | None]:
    """The shards a command works on (``--shard``, else the proxy's; None: one database),
    and the database target when it had to be resolved (never with ``--shard``, so no
    embedded server starts for nothing)."""
    if shard_urls:
        return list(shard_urls), None
    target = resolve_target(database_url)
    with connect(target.url) as conn:
        return proxy_shard_urls(conn), target


def proxy_install(proxy_url: str, shard_urls: list[str] | None) -> None:
    """``pgflow install --proxy``: install or upgrade every shard and the proxy."""
    if not shard_urls:
        raise ConfigurationError(
            f"{describe_conninfo(proxy_url)} is not a pgflow proxy yet: say where its shards are",
            hint="pgflow install --proxy --shard URL --shard URL ... --database-url PROXY_URL",
        )
    result = install_proxy(proxy_url, shard_urls)
    for shard, installed in result.shards:
        done = (
            f"applied {len(installed.applied)} migration(s)" if installed.applied else "up to date"
        )
        click.echo(f"{shard.label}: pgflow schema version {installed.version} ({done})")
    click.echo(
        f"pgflow proxy installed at {describe_conninfo(proxy_url)}: {len(result.shards)} "
        f"shard(s) on {result.partitions} PL/Proxy partition(s), schema version "
        f"{result.schema_version}, {result.mirrored} function(s) sent to every shard"
    )


def print_shard_deploys(deploys: list[ShardDeploy], style: dict[str, str]) -> None:
    """One table: each flow's outcome, with the shards where it happened."""
    rows: dict[tuple[str, str, str, str], list[int]] = {}
    for deploy in deploys:
        for r in deploy.results:
            rows.setdefault(_row(r), []).append(deploy.shard.index)
    table = Table(title=f"pgflow deploy ({len(deploys)} shards)")
    for column in ("flow", "checksum", "action", "detail", "shards"):
        table.add_column(column)
    for (flow, checksum, action, detail), where in rows.items():
        shown = "all" if len(where) == len(deploys) else ", ".join(map(str, where))
        table.add_row(flow, checksum, f"[{style[action]}]{action}[/]", detail, shown)
    Console(stderr=True).print(table)


def _row(result: DeployResult) -> tuple[str, str, str, str]:
    return (result.flow_slug, result.checksum[:12], result.action, result.detail)


@main.command()
@database_url_option
def shards(database_url: str | None) -> None:
    """List the shards of a pgflow proxy as its server sees them.

    For each shard: whether the proxy reaches it and its pgflow schema version. Exits
    with 1 when a shard is unreachable or the versions differ.
    """
    target = resolve_target(database_url)
    with connect(target.url) as conn, conn.cursor(row_factory=dict_row) as cur:
        if proxy_shard_urls(conn) is None:
            raise ConfigurationError(
                f"{describe_conninfo(target.url)} is not a pgflow proxy",
                hint="pass the proxy's URL (--database-url); install one with "
                "`pgflow install --proxy --shard URL ...`",
            )
        rows = cur.execute(query("proxy_shard_status")).fetchall()
    _print_status(rows)
    _check_status(rows)


def _print_status(rows: list[dict[str, Any]]) -> None:
    table = Table(title="pgflow shards")
    for column in ("shard", "connection (from the proxy)", "reachable", "schema", "error"):
        table.add_column(column)
    for row in rows:
        reachable = "[green]yes[/]" if row["reachable"] else "[bold red]no[/]"
        version = "" if row["schema_version"] is None else str(row["schema_version"])
        table.add_row(str(row["shard"]), row["conninfo"], reachable, version, row["error"] or "")
    Console().print(table)


def _check_status(rows: list[dict[str, Any]]) -> None:
    down = [r for r in rows if not r["reachable"]]
    if down:
        raise DatabaseError(
            f"the proxy cannot reach shard(s) {', '.join(str(r['shard']) for r in down)}: "
            f"{down[0]['error']}",
            hint="their runs wait until they are back; check those servers and that the "
            "proxy's server can reach them",
        )
    versions = {r["schema_version"] for r in rows}
    if len(versions) > 1:
        raise SchemaError(
            "the shards' pgflow schema versions differ: "
            + ", ".join(f"shard {r['shard']} has {r['schema_version']}" for r in rows),
            hint="upgrade every shard: `pgflow install --database-url PROXY_URL`",
        )


def sharded_install(proxy: bool, shard_urls: tuple[str, ...], target_url: str) -> bool:
    """``pgflow install`` for sharded set-ups; False: a plain single-database install.

    ``--proxy``: install every shard and the proxy at the database URL (its shards by
    default, when it is a proxy already). ``--shard`` alone: install every shard. Given a
    proxy's URL alone: upgrade its shards and it.
    """
    if shard_urls and not proxy:
        for shard in shard_list(shard_urls):
            try:
                result = install_schema(shard.url)
            except PgflowError as exc:
                raise on_shard(shard, exc) from exc
            click.echo(f"{shard.label}: pgflow schema version {result.version}")
        return True
    with connect(target_url) as conn:
        existing = proxy_shard_urls(conn)
    if not proxy and existing is None:
        return False
    proxy_install(target_url, list(shard_urls) or existing)
    return True
