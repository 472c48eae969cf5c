"""The root ``pgflow`` click group and the shared ``--database-url`` option."""

from __future__ import annotations

import click

from pgflow._version import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="pgflow")
def main() -> None:
    """pgflow: a Postgres-native workflow engine with a typed Python DSL."""


database_url_option = click.option(
    "--database-url",
    metavar="URL",
    default=None,
    help=(
        "Postgres URL. Defaults to PGFLOW_DATABASE_URL, DATABASE_URL, "
        "[tool.pgflow] database_url in pyproject.toml, then an embedded server in .pgflow/."
    ),
)
