"""``pgflow worker FLOWS``: serve the flows of a file or module until stopped."""

from __future__ import annotations

import click

from pgflow._version import __version__
from pgflow._words import counted
from pgflow.cli._group import database_url_option, main, resolve_target
from pgflow.cli._render import configure_logging
from pgflow.cli.shards import resolve_shards, shard_option
from pgflow.db.connection import connect
from pgflow.db.errors import describe_conninfo
from pgflow.db.target import DatabaseTarget
from pgflow.doctor import deployment_warnings
from pgflow.dsl.flow import Flow
from pgflow.errors import PgflowError
from pgflow.loader import load_flows
from pgflow.worker import Worker
from pgflow.worker.settings import DEFAULTS

__all__ = ["worker"]

LOG_LEVELS = click.Choice(["debug", "info", "warning", "error"], case_sensitive=False)


@main.command()
@click.argument("flows_ref", metavar="FLOWS")
@click.option(
    "-c",
    "--concurrency",
    type=click.IntRange(min=1),
    default=DEFAULTS.concurrency,
    show_default=True,
    help="The most handlers running at once.",
)
@click.option(
    "--batch-size",
    type=click.IntRange(min=1),
    default=None,
    help="The most tasks per claim [default: concurrency].",
)
@click.option(
    "--poll-interval",
    type=click.FloatRange(min=0.01),
    default=DEFAULTS.poll_interval,
    show_default=True,
    help="Seconds between fallback polls (notifications wake the worker sooner).",
)
@click.option(
    "--shutdown-grace",
    type=click.FloatRange(min=0),
    default=DEFAULTS.shutdown_grace,
    show_default=True,
    help="Seconds running tasks get to finish on SIGINT/SIGTERM before they are released.",
)
@click.option(
    "--cancel-grace",
    type=click.FloatRange(min=0),
    default=DEFAULTS.cancel_grace,
    show_default=True,
    help="Seconds an async handler of a cancelled run gets before it is cancelled.",
)
@click.option(
    "--listen-url",
    envvar="PGFLOW_LISTEN_URL",
    default=None,
    metavar="URL",
    help="A direct Postgres URL for LISTEN when the database URL goes through PgBouncer "
    "in transaction mode (env PGFLOW_LISTEN_URL); without one such a worker polls.",
)
@click.option(
    "--steps",
    default=None,
    metavar="A,B",
    help="A worker pool: serve only the tasks of these steps (comma-separated slugs) "
    "[default: every step].",
)
@click.option("--log-level", type=LOG_LEVELS, default="info", show_default=True)
@shard_option
@database_url_option
def worker(
    flows_ref: str,
    concurrency: int,
    batch_size: int | None,
    poll_interval: float,
    shutdown_grace: float,
    cancel_grace: float,
    listen_url: str | None,
    steps: str | None,
    log_level: str,
    shard_urls: tuple[str, ...],
    database_url: str | None,
) -> None:
    """Run the handlers of the flows in FLOWS until stopped.

    FLOWS is a file (flows.py) or a module (app.flows), optionally with :attr; without
    :attr every Flow the module defines is served. SIGINT/SIGTERM stop the worker
    gracefully: running tasks get --shutdown-grace seconds, the rest is released for
    other workers. A second signal stops at once. With --shard, or given a pgflow proxy's
    URL, one claim loop per shard (docs/sharding.md).
    """
    flows = load_flows(flows_ref)
    shards, resolved = resolve_shards(shard_urls, database_url)
    target = None if shards is not None else resolved or resolve_target(database_url)
    configure_logging(log_level)
    runner = Worker(
        flows,
        None if target is None else target.url,
        shards=shards,
        concurrency=concurrency,
        batch_size=batch_size,
        poll_interval=poll_interval,
        shutdown_grace=shutdown_grace,
        cancel_grace=cancel_grace,
        listen_url=listen_url,
        steps=None if steps is None else [s.strip() for s in steps.split(",") if s.strip()],
    )
    _start_up_lines(target, flows, runner)
    runner.run()
    click.echo("pgflow worker stopped", err=True)


def _start_up_lines(target: DatabaseTarget | None, flows: list[Flow], runner: Worker) -> None:
    settings = runner.settings
    described = ", ".join(f"{f.slug} ({counted(len(f.steps), 'step')})" for f in flows)
    click.echo(f"pgflow worker {__version__} ({runner.worker_id})", err=True)
    if target is not None:
        click.echo(
            f"  database     {describe_conninfo(target.url)} (from {target.source})", err=True
        )
    for shard in runner.shards or ():
        click.echo(f"  shard {shard.index:<6} {describe_conninfo(shard.url)}", err=True)
    click.echo(f"  flows        {described}", err=True)
    if runner.steps is not None:
        click.echo(f"  steps        {', '.join(runner.steps)} (a worker pool)", err=True)
    click.echo(
        f"  concurrency  {settings.concurrency}{' per shard' if runner.shards else ''} "
        f"(batch {settings.batch_size}, fallback poll "
        f"every {settings.poll_interval:g} s, {settings.shutdown_grace:g} s grace on stop)",
        err=True,
    )
    warnings = _deployment_warnings(target.url, flows) if target else _shard_warnings(runner)
    if warnings is None:
        click.echo(
            "  deployment   not checked: this role may not read pgflow's definitions "
            "(a pgflow_worker role needs no more; `pgflow check FLOWS` as the owner compares)",
            err=True,
        )
    for warning in warnings or ():
        click.secho(f"  warning      {warning}", err=True, fg="yellow")
    click.echo("Waiting for tasks; Ctrl+C stops gracefully (twice: at once).", err=True)


def _deployment_warnings(url: str, flows: list[Flow]) -> list[str] | None:
    with connect(url) as conn:
        return deployment_warnings(conn, flows)


def _shard_warnings(runner: Worker) -> list[str] | None:
    """Each shard's deployment warnings; a shard that is down is said to be retried."""
    found: list[str] = []
    for shard in runner.shards or ():
        try:
            warnings = _deployment_warnings(shard.url, list(runner.flows))
        except PgflowError as exc:
            found.append(f"shard {shard.index} unreachable now ({exc.message}); retried")
            continue
        if warnings is None:
            return None
        found += [f"shard {shard.index}: {w}" for w in warnings]
    return found
