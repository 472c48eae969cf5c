"""Operating on runs after the fact: ``retry`` and ``prune``.

``pgflow retry RUN_ID`` starts a failed or cancelled run again where it stopped;
``pgflow prune --older-than 30d`` deletes finished runs in short transactions. Both print
what they did; data (a run id, a run's output, the prune counts) goes to stdout, status
lines to stderr.
"""

from __future__ import annotations

from datetime import timedelta

import click

from pgflow._duration import DURATION_HINT, parse_duration
from pgflow.cli._group import database_url_option, main, resolve_target
from pgflow.cli._interrupt import EXIT_INTERRUPTED
from pgflow.cli._render import Progress, echo_json, format_duration
from pgflow.client import Client
from pgflow.db.connection import connect
from pgflow.errors import InvalidInputError
from pgflow.models import Run
from pgflow.retention import FINISHED_STATUSES, PruneResult, check_statuses, prune_runs

__all__ = ["prune", "retry"]

_RETRYABLE = ("failed", "cancelled")
_PROGRESS_EVERY = 50  # batches between progress lines of a long prune


def _stderr(message: str) -> None:
    click.echo(message, err=True)


@main.command()
@click.argument("run_id")
@click.option("--wait", is_flag=True, help="Wait for the run, show its steps, print its output.")
@click.option(
    "--timeout",
    type=click.FloatRange(min=0),
    default=None,
    metavar="SECONDS",
    help="With --wait: give up waiting after this many seconds (exit 1).",
)
@database_url_option
def retry(run_id: str, wait: bool, timeout: float | None, database_url: str | None) -> None:
    """Start the failed or cancelled run RUN_ID again where it stopped; print its id.

    Completed steps keep their outputs and are not run again (in a map, only the elements
    that did not complete run again); failed, cancelled and never-started steps run with a
    fresh attempt budget. A live or completed run is left as it is. With --wait, show the
    steps as they progress and print the run's output as JSON once it completes.
    """
    target = resolve_target(database_url)
    with Client(target.url) as client:
        before = client.get_run(run_id)
        after = client.retry(before.run_id)
        click.echo(str(after.run_id))
        if before.status not in _RETRYABLE:
            _stderr(f"Run {after.run_id} is {before.status}: nothing to retry")
            return
        _stderr(_retried_line(before, after))
        if after.status in _RETRYABLE:  # it stopped again at once: say why, exit 1
            after.raise_for_status()
        if not wait:
            return
        finished = _follow(client, after, timeout)
    _stderr(f"Run {finished.run_id} completed in {format_duration(finished.duration)}")
    echo_json(finished.output)


def _retried_line(before: Run, after: Run) -> str:
    again = [s.step_slug for s in after.steps if s.status in ("created", "started")]
    kept = [s.step_slug for s in before.steps if s.status == "completed"]
    line = f"Retrying run {after.run_id} of flow {after.flow_slug!r}"
    if after.status in _RETRYABLE:  # it stopped again at once (e.g. the same bad input)
        return f"{line}: it {after.status} again at once"
    line += f"; running again: {', '.join(again) or 'nothing'}"
    if kept:
        line += f"; kept: {', '.join(kept)}"
    return line


def _follow(client: Client, run: Run, timeout: float | None) -> Run:
    last = run
    try:
        with Progress() as progress:
            for last in client.watch(run.run_id, timeout):
                progress.update(last)
    except KeyboardInterrupt:
        _stderr(
            f"Interrupted: run {run.run_id} is still running; "
            f"follow it with `pgflow status {run.run_id}`"
        )
        raise click.exceptions.Exit(EXIT_INTERRUPTED) from None
    return last.raise_for_status()


@main.command()
@click.option(
    "--older-than",
    "older_than",
    required=True,
    metavar="DURATION",
    help="Delete runs that finished longer ago than this: 45s, 90m, 12h, 30d, 2w.",
)
@click.option("--flow", "flow_slug", default=None, help="Only runs of this flow.")
@click.option(
    "--status",
    "statuses",
    default=None,
    metavar="STATUS[,STATUS]",
    help=f"Only runs in these statuses (default: {','.join(FINISHED_STATUSES)}).",
)
@click.option(
    "--batch-size",
    type=click.IntRange(min=1),
    default=1000,
    show_default=True,
    help="Runs deleted per transaction.",
)
@database_url_option
def prune(
    older_than: str,
    flow_slug: str | None,
    statuses: str | None,
    batch_size: int,
    database_url: str | None,
) -> None:
    """Delete old finished runs and print how many, per flow and status.

    Runs that finished more than --older-than ago go with their steps and tasks: whole months
    of history at once when all their runs qualify, the rest in batches of --batch-size runs,
    each its own short transaction. Live runs are never touched.
    """
    age = _duration(older_than)
    wanted = check_statuses(_split(statuses))
    target = resolve_target(database_url)
    with connect(target.url) as conn:
        result = prune_runs(
            conn, age, flow_slug=flow_slug, statuses=wanted, batch_size=batch_size,
            on_batch=_progress,
        )  # fmt: skip
    what = f"runs that finished more than {older_than.strip()} ago"
    if not result.total:
        filtered = " matching the filters" if flow_slug or statuses else ""
        click.echo(f"Nothing to prune: no {what}{filtered}")
        return
    click.echo(f"Pruned {result.total} {what}:")
    for line in _table(result):
        click.echo(f"  {line}")
    if result.months:
        _stderr(f"Dropped whole months of history: {', '.join(result.months)}")


def _duration(text: str) -> timedelta:
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise InvalidInputError(
            f"--older-than {text!r} is not a valid duration: {exc}", hint=DURATION_HINT
        ) from None


def _split(text: str | None) -> list[str] | None:
    if text is None:
        return None
    parts = [part.strip() for part in text.split(",")]
    return [part for part in parts if part] or [text]


def _progress(result: PruneResult) -> None:
    if result.batches % _PROGRESS_EVERY == 0:
        _stderr(f"... {result.total} runs pruned so far ({result.batches} batches)")


def _table(result: PruneResult) -> list[str]:
    rows = [("flow", "status", "runs")] + [
        (flow, status, str(count)) for (flow, status), count in sorted(result.counts.items())
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    return [f"{row[0]:<{widths[0]}}  {row[1]:<{widths[1]}}  {row[2]:>{widths[2]}}" for row in rows]
