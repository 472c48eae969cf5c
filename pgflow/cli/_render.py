"""How the run-facing commands show things: tables, live progress, JSON, logging set-up.

Status and progress go to stderr whenever stdout carries data (JSON output, a run id), so
``pgflow run flows.py > out.json`` and ``RUN=$(pgflow start ...)`` capture only the data.
Library code never configures logging; the commands call :func:`configure_logging`.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime, timedelta
from typing import Any, Self

import click
from rich.console import Console
from rich.live import Live
from rich.table import Table
from rich.text import Text

from pgflow.cli._group import quiet_libraries
from pgflow.cli._preview import marker_label, preview
from pgflow.models import Run, StepState

__all__ = [
    "Progress",
    "configure_logging",
    "console",
    "echo_json",
    "format_duration",
    "run_summary",
    "runs_table",
    "steps_table",
]

_STYLE = {
    "created": "dim",
    "started": "cyan",
    "completed": "green",
    "failed": "bold red",
    "skipped": "yellow",
    "cancelled": "magenta",
}
_MARK = {"completed": "✓", "failed": "✗", "skipped": "-", "cancelled": "⊘"}


def console(*, stderr: bool = False) -> Console:
    """A console for tables: the terminal's width, or 200 columns when redirected."""
    found = Console(stderr=stderr)
    return found if found.is_terminal else Console(stderr=stderr, width=200)


def configure_logging(level: str = "INFO") -> None:
    """Send pgflow's log records to stderr, one line each; quiet chatty libraries."""
    handler = logging.StreamHandler()
    handler.setFormatter(
        logging.Formatter("%(asctime)s %(levelname)-7s %(message)s", datefmt="%H:%M:%S")
    )
    root = logging.getLogger("pgflow")
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    root.propagate = False
    quiet_libraries()


def echo_json(value: Any) -> None:
    """Print a JSON value to stdout, indented, non-ASCII kept."""
    click.echo(json.dumps(value, indent=2, ensure_ascii=False, default=str))


def format_duration(value: timedelta | None) -> str:
    """``12 ms``, ``3.4 s``, ``2 min 5 s``; empty when unknown."""
    if value is None:
        return ""
    seconds = value.total_seconds()
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest} s"


def _when(value: datetime | None) -> str:
    return "" if value is None else value.astimezone().strftime("%Y-%m-%d %H:%M:%S")


def _status(status: str) -> Text:
    return Text(status, style=_STYLE.get(status, ""))


def _first_line(text: str | None, width: int = 100) -> str:
    line = (text or "").strip().splitlines()[0] if (text or "").strip() else ""
    return line if len(line) <= width else line[: width - 1] + "…"


def _tasks(step: StepState) -> str:
    if step.step_type != "map" or step.initial_tasks is None:
        return ""
    done = step.tasks.get("completed", 0)
    return f"{done}/{step.initial_tasks}"


def steps_table(run: Run) -> Table:
    """One row per step: status, attempts, map progress, duration, output, error or skip."""
    table = Table(box=None, pad_edge=False, header_style="bold")
    for column in ("step", "status", "attempts", "tasks", "duration", "output", "error"):
        table.add_column(column, justify="right" if column in ("attempts", "tasks") else "left")
    for step in run.steps:
        problem = step.error_message or step.skip_reason
        table.add_row(
            step.step_slug,
            _status(step.status),
            str(step.attempts or ""),
            _tasks(step),
            format_duration(step.duration),
            _value(step.output, 40) if step.status == "completed" else "",
            Text(_first_line(problem), style="red" if step.error_message else "yellow"),
        )
    return table


def _value(value: Any, width: int) -> Text:
    """A value's preview; a marker is shown whole and stands out (it is not the value)."""
    label = marker_label(value)
    return Text(preview(value, width)) if label is None else Text(label, style="yellow")


def run_summary(run: Run) -> Table:
    """The run's header: id, flow, status, times, input and output previews, error."""
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold")
    table.add_column()
    table.add_row("run", str(run.run_id))
    table.add_row("flow", run.flow_slug)
    table.add_row("status", _status(run.status))
    table.add_row("started", _when(run.started_at))
    if run.is_finished:
        table.add_row("finished", f"{_when(run.finished_at)} ({format_duration(run.duration)})")
    table.add_row("input", _value(run.input, 100))
    if run.status == "completed":
        table.add_row("output", _value(run.output, 100))
    if run.error_message:
        table.add_row("error", Text(run.error_message, style="red"))
    return table


def runs_table(runs: list[Run]) -> Table:
    """One row per run, newest first."""
    table = Table(box=None, pad_edge=False, header_style="bold")
    table.add_column("run id", no_wrap=True, min_width=36)
    for column in ("flow", "status", "started", "duration", "error"):
        table.add_column(column, no_wrap=column != "error")
    for run in runs:
        table.add_row(
            str(run.run_id),
            run.flow_slug,
            _status(run.status),
            _when(run.started_at),
            format_duration(run.duration),
            Text(_first_line(run.error_message, 60), style="red"),
        )
    return table


class Progress:
    """Shows a run's steps while it is live, on stderr.

    On a terminal, a table refreshed in place (rich ``Live``); otherwise one line per step
    that reaches a final status, so logs and CI output stay readable.
    """

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console(stderr=True)  # lines are soft-wrapped anyway
        self._live: Live | None = None
        self._shown: dict[str, str] = {}

    def __enter__(self) -> Self:
        if self.console.is_terminal:
            self._live = Live(console=self.console, auto_refresh=False, transient=False)
            self._live.__enter__()
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._live is not None:
            self._live.__exit__(None, None, None)

    def update(self, run: Run) -> None:
        """Show the run's latest state."""
        if self._live is not None:
            self._live.update(steps_table(run), refresh=True)
            return
        for step in run.steps:
            if step.is_finished and self._shown.get(step.step_slug) != step.status:
                self._shown[step.step_slug] = step.status
                self._line(step)

    def _line(self, step: StepState) -> None:
        text = Text(f"  {_MARK.get(step.status, ' ')} {step.step_slug:<24} ")
        text.append(f"{step.status:<10}", style=_STYLE.get(step.status, ""))
        text.append(f" {format_duration(step.duration)}")
        problem = _first_line(step.error_message or step.skip_reason, 80)
        if problem:
            text.append(f"  {problem}", style="red" if step.error_message else "yellow")
        self.console.print(text, highlight=False, soft_wrap=True)
