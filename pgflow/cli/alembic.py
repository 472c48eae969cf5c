"""CLI commands for Alembic projects: ``pgflow alembic revision`` and ``pgflow alembic retire``.

Both work offline: they read ``alembic.ini`` and the revision files, never the database.
The Alembic integration is imported only when a command runs, so ``pgflow --help`` stays
fast and a missing ``alembic`` package is a one-line hint.
"""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import click

from pgflow.cli._group import main
from pgflow.errors import ConfigurationError
from pgflow.loader import load_flows

__all__ = ["alembic_group", "retire", "revision"]

config_option = click.option(
    "-c",
    "--config",
    "config_file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("alembic.ini"),
    show_default=True,
    help="The Alembic configuration file.",
)
section_option = click.option(
    "-n", "--name", "section", default="alembic", show_default=True, help="Its ini section."
)
message_option = click.option("-m", "--message", default=None, help="The revision message.")
rev_id_option = click.option("--rev-id", default=None, help="The revision id (default: random).")
head_option = click.option(
    "--head", default=None, help="Your revision to build on (default: your single head)."
)


def _integration(name: str) -> ModuleType:
    try:
        import importlib

        return importlib.import_module(f"pgflow.contrib.alembic.{name}")
    except ImportError as exc:
        if exc.name not in ("alembic", "sqlalchemy"):
            raise
        raise ConfigurationError(
            f"the Alembic integration needs the {exc.name!r} package",
            hint="pip install 'pgflow-py[alembic]' (or: pip install alembic SQLAlchemy)",
        ) from exc


@main.group(name="alembic")
def alembic_group() -> None:
    """Ship flows through Alembic migrations.

    \b
    Set-up, once (needs pip install 'pgflow-py[alembic]'), in alembic.ini [alembic]:
      path_separator = newline
      version_locations =
          %(here)s/migrations/versions
          pgflow.contrib.alembic:versions
    Then `alembic upgrade heads` installs or upgrades the pgflow schema, and
    `pgflow alembic revision FLOWS` writes a revision that applies the flows.
    For `alembic revision --autogenerate`, pass process_revision_directives=
    pgflow.contrib.alembic.pgflow_revision_directives to context.configure in env.py.
    The full walk-through is docs/alembic.md in the source repository.
    """


@alembic_group.command()
@click.argument("flows_ref", metavar="FLOWS")
@message_option
@config_option
@section_option
@rev_id_option
@head_option
def revision(
    flows_ref: str,
    message: str | None,
    config_file: Path,
    section: str,
    rev_id: str | None,
    head: str | None,
) -> None:
    """Write a revision whose upgrade applies the compiled SQL of FLOWS.

    The SQL is frozen in the file; its downgrade removes the flows (and their runs); it
    depends on the pgflow schema branch. Earlier revisions are read first: a flow they
    define with the same shape is left out, a changed shape is refused.
    """
    flows = load_flows(flows_ref)
    module = _integration("revision")
    result = module.write_revision(
        flows, config_file, message=message, rev_id=rev_id, head=head, section=section
    )
    for slug, where in result.unchanged.items():
        click.echo(f"flow {slug!r} is already defined with the same shape in {where}")
    if result.path is None:
        click.echo("nothing to write: every flow is already defined")
        return
    click.echo(f"wrote {result.path} (revision {result.revision}: {', '.join(result.written)})")


@alembic_group.command()
@click.argument("slugs", metavar="SLUG...", nargs=-1, required=True)
@message_option
@config_option
@section_option
@rev_id_option
@head_option
def retire(
    slugs: tuple[str, ...],
    message: str | None,
    config_file: Path,
    section: str,
    rev_id: str | None,
    head: str | None,
) -> None:
    """Write a revision whose upgrade removes the flows SLUG... and all their runs.

    Its downgrade re-applies the SQL that defined them, copied from the earlier revision.
    Retire a flow once no run of it is still going and no worker serves it.
    """
    module = _integration("retire")
    result = module.write_retirement(
        list(slugs), config_file, message=message, rev_id=rev_id, head=head, section=section
    )
    click.echo(f"wrote {result.path} (revision {result.revision}: retires {', '.join(slugs)})")
