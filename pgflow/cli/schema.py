"""CLI commands for the schema and the embedded server: ``install``, ``embedded stop``."""

from __future__ import annotations

from pathlib import Path

import click

from pgflow.cli._group import database_url_option, main, resolve_target
from pgflow.cli.shards import shard_option, sharded_install
from pgflow.db import embedded
from pgflow.db.project import project_dir
from pgflow.db.schema import install as install_schema

__all__ = ["embedded_group", "embedded_stop", "embedded_url", "install"]


@main.command()
@click.option(
    "--proxy",
    is_flag=True,
    help="Install the pgflow proxy (PL/Proxy) at the database URL in front of the --shard "
    "databases, installing or upgrading each shard too (docs/sharding.md).",
)
@shard_option
@database_url_option
def install(proxy: bool, shard_urls: tuple[str, ...], database_url: str | None) -> None:
    """Install or upgrade the pgflow schema (idempotent; safe to run concurrently).

    With --proxy, or given a pgflow proxy's URL: install or upgrade every shard and the
    proxy in front of them; with --shard alone: every shard.
    """
    target = resolve_target(database_url)
    if sharded_install(proxy, shard_urls, target.url):
        return
    result = install_schema(target.url)
    for notice in result.notices:
        click.echo(notice)
    for migration in result.applied:
        click.echo(f"Applied migration {migration.filename}")
    if result.applied:
        click.echo(f"pgflow schema installed at version {result.version}")
    else:
        click.echo(f"pgflow schema already up to date (version {result.version})")


@main.group(name="embedded")
def embedded_group() -> None:
    """Manage the embedded Postgres that runs when no database URL is configured."""


def _data_dir() -> Path:
    return embedded.data_dir(project_dir())  # resolved here too, to name it in the output


def _shown(path: Path) -> str:
    try:
        return f"./{path.relative_to(Path.cwd().resolve())}"
    except ValueError:
        return str(path)


@embedded_group.command(name="stop")
def embedded_stop() -> None:
    """Stop the embedded Postgres of this project (its data is kept)."""
    pgdata = _data_dir()
    if embedded.stop_embedded(pgdata):
        click.echo(f"Stopped the embedded Postgres in {_shown(pgdata.parent)}")
    else:
        click.echo(f"The embedded Postgres in {_shown(pgdata.parent)} is not running")


@embedded_group.command(name="url")
def embedded_url() -> None:
    """Start the embedded Postgres if needed and print its URL (e.g. for psql)."""
    click.echo(embedded.start_embedded(_data_dir()))
