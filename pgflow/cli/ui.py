"""``pgflow ui``: serve the run viewer (needs the ``ui`` extra; imported only when run)."""

from __future__ import annotations

import os

import click

from pgflow.cli._group import database_url_option, main, reader_url_option, resolve_target
from pgflow.db.target import READER_URL_ENV, resolve_reader
from pgflow.errors import ConfigurationError

__all__ = ["ui"]

_EXTRA_HINT = "install the extra: pip install 'pgflow-py[ui]'"


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="The address to listen on.")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=8765,
    show_default=True,
    help="The TCP port (0: any free port).",
)
@click.option("--read-only", is_flag=True, help="No retry or cancel (works as pgflow_reader).")
@click.option(
    "--token",
    envvar="PGFLOW_UI_TOKEN",
    default=None,
    help="A secret every request must carry; required to listen beyond localhost.",
)
@reader_url_option
@database_url_option
def ui(
    host: str,
    port: int,
    read_only: bool,
    token: str | None,
    reader_url: str | None,
    database_url: str | None,
) -> None:
    """Serve the run viewer: flows, runs and each run live, in a browser.

    Listens on 127.0.0.1:8765 by default; any other address needs --token (open the
    printed address once, ending in ?token=...). With --read-only there are no actions,
    and the pgflow_reader role is enough. With --reader-url (or PGFLOW_READER_URL) pages
    read from that replica; retry, cancel and live updates stay on the database. Ctrl+C
    stops it (exit 0).
    """
    try:
        from pgflow.ui.server import serve
        from pgflow.ui.settings import UiSettings
    except ImportError as exc:
        missing = (exc.name or "starlette").split(".")[0]
        raise ConfigurationError(
            f"pgflow ui needs the ui extra (cannot import {missing})",
            hint=_EXTRA_HINT,
        ) from None
    settings = UiSettings(host=host, port=port, read_only=read_only, token=token)
    settings.check()  # before resolving (and maybe starting) a database
    target = resolve_target(database_url)
    configured = reader_url or os.environ.get(READER_URL_ENV)
    reader = resolve_reader(reader_url).url if configured else None
    try:
        serve(
            settings,
            target.url,
            announce=lambda line: click.echo(line, err=True),
            reader_conninfo=reader,
        )
    except KeyboardInterrupt:  # uvicorn stops gracefully, then re-raises the Ctrl+C
        pass
    click.echo("pgflow ui: stopped", err=True)
