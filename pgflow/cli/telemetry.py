"""Telemetry commands: ``events``, ``stats`` and ``workers`` (docs/telemetry.md).

``events`` prints NDJSON (one JSON object a line, flushed as it goes); ``stats`` and
``workers`` print a table, or JSON with ``--json``. Each calls one function of
:mod:`pgflow.telemetry`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import timedelta

import click
from rich.table import Table
from rich.text import Text

from pgflow.cli._group import (
    database_url_option,
    main,
    reader_url_option,
    resolve_reader_target,
    resolve_target,
)
from pgflow.cli._interrupt import EXIT_INTERRUPTED
from pgflow.cli._render import console, echo_json
from pgflow.cli._since import since_option
from pgflow.db.connection import connect
from pgflow.errors import InvalidInputError
from pgflow.telemetry.events import (
    Event,
    check_flow,
    check_run,
    follow_events,
    recent_events,
)
from pgflow.telemetry.stats import StepStats, step_stats
from pgflow.telemetry.workers import LIVE_WITHIN, WorkerInfo, list_workers

__all__ = ["events", "stats", "workers"]

json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
flow_option = click.option("--flow", "flow_slug", default=None, help="Only this flow.")


@main.command()
@click.option("-f", "--follow", is_flag=True, help="Keep printing new events as they happen.")
@flow_option
@click.option("--run", "run_id", default=None, metavar="RUN_ID", help="Only this run.")
@click.option(
    "--since",
    default="1h",
    show_default=True,
    metavar="DURATION",
    help="Replay events from this long ago (90s, 15m, 2h, 7d) or since a date.",
)
@click.option(
    "--limit",
    type=click.IntRange(min=1),
    default=1000,
    show_default=True,
    help="At most this many replayed events (the newest).",
)
@database_url_option
def events(
    follow: bool,
    flow_slug: str | None,
    run_id: str | None,
    since: str,
    limit: int,
    database_url: str | None,
) -> None:
    """Print lifecycle events of runs, steps and tasks as NDJSON, oldest first.

    Replays the newest --limit events since --since (derived from the timestamps pgflow
    stores); with -f, then keeps printing new ones until Ctrl+C.
    """
    window = since_option(since)
    target = resolve_target(database_url)
    with connect(target.url) as conn:
        if not follow:
            _print_events(
                recent_events(conn, since=window, flow_slug=flow_slug, run_id=run_id, limit=limit)
            )
            return
        check_flow(conn, flow_slug)
        run = check_run(conn, run_id)
        stream = follow_events(conn, since=window, flow_slug=flow_slug, run_id=run, limit=limit)
        try:
            _print_events(stream)
        except KeyboardInterrupt:
            raise click.exceptions.Exit(EXIT_INTERRUPTED) from None


def _print_events(found: Iterable[Event]) -> None:
    for event in found:
        click.echo(json.dumps(event.to_json(), ensure_ascii=False, separators=(",", ":")))


@main.command()
@flow_option
@click.option(
    "--since",
    default="24h",
    show_default=True,
    metavar="DURATION",
    help="Tasks that finished within this duration (90m, 24h, 7d) or since a date.",
)
@json_option
@reader_url_option
@database_url_option
def stats(
    flow_slug: str | None,
    since: str,
    as_json: bool,
    reader_url: str | None,
    database_url: str | None,
) -> None:
    """Per step: runs, tasks, success rate, retries, duration and queue-wait percentiles.

    Computed from the tasks that finished in the window (completed, failed or cancelled).
    Duration: from the last attempt's claim to its result; queue wait: from the task
    becoming claimable to that claim.
    """
    window = since_option(since)
    target = resolve_reader_target(reader_url, database_url)
    with connect(target.url) as conn:
        found = step_stats(conn, since=window, flow_slug=flow_slug)
    if as_json:
        echo_json([s.to_json() for s in found])
    elif not found:
        click.echo(
            f"No finished tasks since {since}" + (f" in flow {flow_slug!r}" if flow_slug else ""),
            err=True,
        )
    else:
        console().print(_stats_table(found))


def _seconds(value: float | None) -> str:
    if value is None:
        return ""
    if value < 1:
        return f"{value * 1000:.1f} ms" if value < 0.01 else f"{value * 1000:.0f} ms"
    return f"{value:.2f} s" if value < 60 else f"{value / 60:.1f} min"


def _stats_table(found: list[StepStats]) -> Table:
    table = Table(box=None, pad_edge=False, header_style="bold")
    columns = ("flow", "step", "runs", "tasks", "success", "retries", "p50", "p95", "p99",
               "wait p50", "wait p95")  # fmt: skip
    for column in columns:
        table.add_column(column, justify="left" if column in ("flow", "step") else "right")
    for s in found:
        rate = "" if s.success_rate is None else f"{s.success_rate:.1%}"
        table.add_row(
            s.flow_slug, s.step_slug, f"{s.runs:,}", f"{s.tasks:,}",
            Text(rate, style="red" if s.failed else ""), f"{s.retries:,}",
            _seconds(s.duration_p50), _seconds(s.duration_p95), _seconds(s.duration_p99),
            _seconds(s.wait_p50), _seconds(s.wait_p95),
        )  # fmt: skip
    return table


@main.command()
@click.option("--all", "include_all", is_flag=True, help="Also stopped and long-silent workers.")
@click.option(
    "--gone-after",
    default=f"{round(LIVE_WITHIN.total_seconds())}s",
    show_default=True,
    metavar="DURATION",
    help="A worker whose last heartbeat is older than this is gone.",
)
@json_option
@database_url_option
def workers(include_all: bool, gone_after: str, as_json: bool, database_url: str | None) -> None:
    """List workers: live ones, and those whose heartbeat stopped (gone) in the last 24 h.

    With --all, also workers that shut down (stopped) and older silent ones.
    """
    live_within = since_option(gone_after, "--gone-after")
    if not isinstance(live_within, timedelta):
        raise InvalidInputError(
            f"--gone-after {gone_after!r} is a date, not a duration", hint="e.g. --gone-after 30s"
        )
    target = resolve_target(database_url)
    with connect(target.url) as conn:
        found = list_workers(conn, live_within=live_within, include_all=include_all)
    if as_json:
        echo_json([w.to_json() for w in found])
    elif not found:
        click.echo("No workers registered" + ("" if include_all else " in the last 24 h"), err=True)
    else:
        console().print(_workers_table(found))


_STATE_STYLE = {"live": "green", "gone": "bold red", "stopped": "dim"}


def _workers_table(found: list[WorkerInfo]) -> Table:
    table = Table(box=None, pad_edge=False, header_style="bold")
    for column in ("worker id", "state", "host", "pid", "flows", "last heartbeat", "in flight"):
        table.add_column(column, justify="right" if column in ("pid", "in flight") else "left")
    for w in found:
        table.add_row(
            str(w.worker_id), Text(w.state, style=_STATE_STYLE[w.state]), w.hostname or "",
            str(w.pid or ""), ",".join(w.flow_slugs), f"{_seconds(w.heartbeat_age)} ago",
            str(w.in_flight),
        )  # fmt: skip
    return table
