"""What ``pgflow status`` shows: the run, its steps, and each failed task's last error.

A failed task keeps its last attempt's exception type, message and traceback (see
docs/workers.md). The text view trims each traceback to the user's frames (library frames
are counted, not shown; ``--full-traceback`` shows them) and shows at most
:data:`SHOWN_FAILURES` tasks; ``--json`` lists up to :data:`JSON_FAILURES` of them whole.

``--follow`` reads the run again after each of its events (LISTEN on the run's channel,
no polling) until it is terminal: a table refreshed in place on a terminal, one appended
line per step change otherwise, then the full view.
"""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass
from typing import Any

import click
from psycopg.rows import dict_row
from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.text import Text

from pgflow._client_base import is_proxy
from pgflow.cli._interrupt import EXIT_INTERRUPTED
from pgflow.cli._render import echo_json, format_duration, run_summary, steps_table
from pgflow.cli._traceback import raised_at, trim_traceback
from pgflow.client import Client
from pgflow.db.connection import connect
from pgflow.db.errors import wrap_db_errors
from pgflow.models import Run, StepState
from pgflow.sql import query

__all__ = ["Failures", "follow", "read_failures", "show_status", "status_json", "status_view"]

SHOWN_FAILURES = 5
JSON_FAILURES = 100
_STYLE = {"completed": "green", "failed": "bold red", "skipped": "yellow", "cancelled": "magenta"}
_MARK = {"started": "…", "completed": "✓", "failed": "✗", "skipped": "-", "cancelled": "⊘"}


@dataclass(frozen=True, slots=True)
class FailedTask:
    """A failed task and its last attempt's error."""

    step_slug: str
    task_index: int
    attempt: int
    error_type: str | None
    error_message: str | None
    traceback: str | None


@dataclass(frozen=True, slots=True)
class Failures:
    """The first failed tasks of a run, and how many failed in all."""

    tasks: tuple[FailedTask, ...]
    total: int


def read_failures(url: str, run_id: uuid.UUID, limit: int = JSON_FAILURES) -> Failures:
    """The first ``limit`` failed tasks of a run (step order, then task index)."""
    params = {"run_id": run_id, "limit": limit}
    with wrap_db_errors(), connect(url) as conn, conn.cursor(row_factory=dict_row) as cur:
        # a pgflow proxy has no task tables: it asks the run's shard (docs/sharding.md)
        proxied = "_proxied" if is_proxy(cur.execute(query("proxy_detect")).fetchone()) else ""
        rows = cur.execute(query(f"status_failed_tasks{proxied}"), params).fetchall()
        total = cur.execute(query(f"status_failed_task_count{proxied}"), params).fetchone()
    tasks = tuple(
        FailedTask(
            r["step_slug"],
            r["task_index"],
            r["attempts_count"],
            r["error_type"],
            r["error_message"],
            r["error_traceback"],
        )
        for r in rows
    )
    return Failures(tasks, total["failed"] if total else len(tasks))


def status_json(run: Run, failures: Failures) -> dict[str, Any]:
    """``--json``: the run with its steps, plus ``failed_tasks`` and ``failed_task_count``."""
    return {
        **run.model_dump(mode="json"),
        "failed_tasks": [asdict(task) for task in failures.tasks],
        "failed_task_count": failures.total,
    }


def status_view(run: Run, failures: Failures, *, full: bool = False) -> RenderableType:
    """The run's summary, its steps, then the last error of each failed task."""
    parts: list[RenderableType] = [run_summary(run), Text(), steps_table(run)]
    for task in failures.tasks[:SHOWN_FAILURES]:
        parts += [Text(), *_failure(run, task, full)]
    hidden = failures.total - min(len(failures.tasks), SHOWN_FAILURES)
    if hidden > 0:
        parts += [
            Text(),
            Text(
                f"… and {hidden} more failed task{'s' if hidden > 1 else ''}: "
                f"`pgflow status {run.run_id} --json` lists up to {JSON_FAILURES}",
                style="dim",
            ),
        ]
    return Group(*parts)


def _failure(run: Run, task: FailedTask, full: bool) -> list[Text]:
    is_map = _is_map(run, task.step_slug)
    where = f"{task.step_slug}[{task.task_index}]" if is_map else task.step_slug
    head = Text(f"✗ {where}", style="bold red")
    head.append(f"  attempt {task.attempt}", style="dim")
    error = f"{task.error_type}: {task.error_message}" if task.error_type else task.error_message
    lines = [head, Text(f"  {error or 'unknown error'}", style="red")]
    if not task.traceback:
        return lines
    at = raised_at(task.traceback)
    if at:
        lines.append(Text(f"  raised at {at}", style="bold"))
    trace = task.traceback.rstrip("\n").splitlines() if full else trim_traceback(task.traceback)
    return lines + [Text("  " + line, style="dim" if "[…" in line else "") for line in trace]


def _is_map(run: Run, step_slug: str) -> bool:
    return any(s.step_slug == step_slug and s.step_type == "map" for s in run.steps)


def follow(client: Client, run_id: str, console: Console) -> Run:
    """Show the run as it changes until it is terminal, then return it (as last read)."""
    if console.is_terminal:
        return _follow_live(client, run_id, console)
    seen: dict[str, str] | None = None
    last: Run | None = None
    for last in client.watch(run_id):
        if seen is None:  # the first read also prints the steps that already moved
            header = f"Following run {last.run_id} of flow {last.flow_slug!r} ({last.status})"
            console.print(header, highlight=False)
            seen = {}
        for step in last.steps:
            if seen.get(step.step_slug, "created") != step.status:
                console.print(_change_line(step), highlight=False, soft_wrap=True)
            seen[step.step_slug] = step.status
    assert last is not None  # watch() yields at least once
    return last


def _follow_live(client: Client, run_id: str, console: Console) -> Run:
    last: Run | None = None
    with Live(console=console, auto_refresh=False, transient=True) as live:
        for last in client.watch(run_id):
            live.update(Group(run_summary(last), Text(), steps_table(last)), refresh=True)
    assert last is not None
    return last


def _change_line(step: StepState) -> Text:
    text = Text(f"  {_MARK.get(step.status, ' ')} {step.step_slug:<24} ")
    text.append(f"{step.status:<10}", style=_STYLE.get(step.status, "cyan"))
    if step.is_finished:
        text.append(f" {format_duration(step.duration)}")
    problem = (step.error_message or step.skip_reason or "").strip().splitlines()
    if problem:
        text.append(f"  {problem[0][:100]}", style="red" if step.error_message else "yellow")
    return text


def show_status(
    url: str,
    run_id: str,
    *,
    as_json: bool,
    follow_run: bool,
    full: bool,
    out: Console,
    replica: bool = False,
    primary_url: str | None = None,
) -> None:
    """``pgflow status``: read (or follow) the run, then print it with its failures.

    With ``replica``, ``url`` is a read replica's (``--reader-url``) and following
    LISTENs on the primary, ``primary_url`` (None: resolved like ``--database-url``):
    replicas relay no notifications.

    Raises:
        UnknownRunError: no run has that id.
        RunFailedError, RunCancelledError: (with ``follow_run``) how the followed run ended.
    """
    with Client(primary_url, reader_url=url) if replica else Client(url) as client:
        found = client.get_run(run_id)
        if follow_run and not found.is_finished:
            progress = Console(stderr=True) if as_json else out
            try:
                found = follow(client, run_id, progress)
            except KeyboardInterrupt:
                click.echo(
                    f"Stopped following run {found.run_id}; it keeps running "
                    f"(`pgflow status {found.run_id} --follow` picks it up again)",
                    err=True,
                )
                raise click.exceptions.Exit(EXIT_INTERRUPTED) from None
    failures = read_failures(url, found.run_id)
    if as_json:
        echo_json(status_json(found, failures))
    else:
        out.print(status_view(found, failures, full=full))
    if follow_run:
        found.raise_for_status()
