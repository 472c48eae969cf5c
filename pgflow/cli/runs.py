"""Run-facing commands: ``start``, ``status``, ``runs``, ``cancel`` and ``run``.

Data goes to stdout (a run id, JSON output, tables asked for); status lines and progress
go to stderr, so ``RUN=$(pgflow start ...)`` and ``pgflow run ... > out.json`` capture
only the data.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from pgflow.cli._group import (
    database_url_option,
    main,
    reader_url_option,
    resolve_reader_target,
    resolve_target,
)
from pgflow.cli._interrupt import EXIT_INTERRUPTED, Interrupted, run_interruptibly
from pgflow.cli._render import (
    Progress,
    configure_logging,
    console,
    echo_json,
    format_duration,
    runs_table,
)
from pgflow.cli._since import since_option
from pgflow.cli._status import show_status
from pgflow.client import Client
from pgflow.db.connection import connect
from pgflow.db.schema import install as install_schema
from pgflow.deploy import DeployResult, deploy_flows
from pgflow.dsl.flow import Flow
from pgflow.errors import FlowLoadError, InvalidInputError
from pgflow.loader import load_flows
from pgflow.models import RUN_STATUSES, Run
from pgflow.worker.oneshot import run_flow
from pgflow.worker.settings import DEFAULTS

__all__ = ["cancel", "parse_input", "run", "runs", "start", "status"]

_INPUT_HELP = "The run input as JSON, @FILE to read it from a file, or - for stdin."
input_option = click.option("--input", "input_text", metavar="JSON", default=None, help=_INPUT_HELP)
timeout_option = click.option(
    "--timeout",
    type=click.FloatRange(min=0),
    default=None,
    metavar="SECONDS",
    help="Give up waiting after this many seconds (exit 1).",
)
_JSON_HINT = (
    'pass a JSON value in single quotes, e.g. --input \'{"url": "https://example.com"}\', '
    "or --input @input.json"
)
json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")


def parse_input(text: str | None) -> Any:
    """Read ``--input``: JSON text, ``@file`` or ``-`` (stdin); ``{}`` when not given.

    Raises:
        InvalidInputError: the file cannot be read or the text is not valid JSON.
    """
    if text is None:
        return {}
    source = "--input"
    if text == "-":
        text, source = sys.stdin.read(), "the input read from stdin"
    elif text.startswith("@"):
        text, source = _read_file(Path(text[1:])), f"the input file {text[1:]}"
    try:
        return json.loads(text, parse_constant=_no_constant)
    except json.JSONDecodeError as exc:
        raise InvalidInputError(
            f"{source} is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})",
            hint=_JSON_HINT,
        ) from None
    except (ValueError, RecursionError) as exc:  # NaN, too long a number, too deep
        problem = "it is nested too deeply" if isinstance(exc, RecursionError) else str(exc)
        raise InvalidInputError(f"{source} is not valid JSON: {problem}", hint=_JSON_HINT) from None


def _no_constant(name: str) -> Any:
    """Python's json module accepts NaN and Infinity; JSON (and jsonb) does not."""
    raise ValueError(f"{name} is not a JSON value")


def _read_file(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidInputError(
            f"cannot read the input file {path}: {exc.strerror or exc}",
            hint="check the path after '@' (relative to the current directory)",
        ) from None
    except UnicodeDecodeError:
        raise InvalidInputError(
            f"the input file {path} is not UTF-8 text",
            hint="JSON input files must be UTF-8 encoded",
        ) from None


def _stderr(message: str) -> None:
    click.echo(message, err=True)


@main.command()
@click.argument("slug")
@input_option
@click.option("--wait", is_flag=True, help="Wait for the run, show its steps, print its output.")
@timeout_option
@click.option("--run-id", default=None, help="Give the run this UUID (idempotent start).")
@click.option(
    "--priority",
    type=click.IntRange(-100, 100),
    default=None,
    help="-100..100, higher first [default: the flow's].",
)
@database_url_option
def start(
    slug: str,
    input_text: str | None,
    wait: bool,
    timeout: float | None,
    run_id: str | None,
    priority: int | None,
    database_url: str | None,
) -> None:
    """Start a run of the deployed flow SLUG and print its run id.

    With --wait, show the steps as they progress (on stderr) and print the run's output
    as JSON once it completes; exit 1 with the failing step's error if it fails. Ctrl+C
    stops waiting (exit 130) and leaves the run running.
    """
    value = parse_input(input_text)
    target = resolve_target(database_url)
    with Client(target.url) as client:
        started = _start(client, slug, value, run_id, priority, input_given=input_text is not None)
        if not wait:
            click.echo(str(started.run_id))
            _stderr(f"Started run {started.run_id}; see it with `pgflow status {started.run_id}`")
            return
        try:
            _stderr(f"Started run {started.run_id} of flow {slug!r}; waiting for it to finish")
            finished = _follow(client, started, timeout)
        except KeyboardInterrupt:
            _stderr(
                f"Interrupted: run {started.run_id} is still running; "
                f"follow it with `pgflow status {started.run_id}`"
            )
            raise click.exceptions.Exit(EXIT_INTERRUPTED) from None
        output = client.output(finished)  # values stored by reference fetched
    _stderr(f"Run {finished.run_id} completed in {format_duration(finished.duration)}")
    echo_json(output)


def _start(
    client: Client,
    slug: str,
    value: Any,
    run_id: str | None,
    priority: int | None,
    input_given: bool,
) -> Run:
    """Start by slug: the client checks the input against the flow's stored schema."""
    try:
        return client.start(slug, value, run_id=run_id, priority=priority)
    except InvalidInputError as exc:
        if input_given or not exc.errors:
            raise
        listed = "".join(f"\n  {path}: {message}" for path, message in exc.errors)
        raise InvalidInputError(
            f"no --input given, and flow {slug!r} needs one (nothing was started):{listed}",
            hint="pass the run input as JSON: --input '{...}', --input @input.json, or "
            "--input - to read it from stdin",
            flow_slug=slug,
            errors=exc.errors,
        ) from exc


def _follow(client: Client, started: Run, timeout: float | None) -> Run:
    last = started
    with Progress() as progress:
        for last in client.watch(started.run_id, timeout):
            progress.update(last)
    return last.raise_for_status()


@main.command()
@click.argument("run_id")
@json_option
@click.option(
    "-f",
    "--follow",
    "follow_run",
    is_flag=True,
    help="Update until the run is completed, failed or cancelled (exit 1 unless completed).",
)
@click.option("--full-traceback", "full", is_flag=True, help="Show tracebacks untrimmed.")
@reader_url_option
@database_url_option
def status(
    run_id: str,
    as_json: bool,
    follow_run: bool,
    full: bool,
    reader_url: str | None,
    database_url: str | None,
) -> None:
    """Show a run, each of its steps, and the last error and traceback of failed tasks."""
    target = resolve_reader_target(reader_url, database_url)
    show_status(
        target.url, run_id, as_json=as_json, follow_run=follow_run, full=full, out=console(),
        replica=target.is_reader, primary_url=database_url,
    )  # fmt: skip


@main.command()
@click.option("--flow", "flow_slug", default=None, help="Only runs of this flow.")
@click.option("--status", "run_status", type=click.Choice(RUN_STATUSES), default=None)
@click.option(
    "--since",
    default=None,
    metavar="DURATION",
    help="Only runs started within this duration (90m, 12h, 7d, 2w) or since this date.",
)
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True)
@json_option
@reader_url_option
@database_url_option
def runs(
    flow_slug: str | None,
    run_status: str | None,
    since: str | None,
    limit: int,
    as_json: bool,
    reader_url: str | None,
    database_url: str | None,
) -> None:
    """List recent runs, newest first."""
    window = None if since is None else since_option(since)
    target = resolve_reader_target(reader_url, database_url)
    with Client(target.url) as client:
        found = client.runs(flow_slug=flow_slug, status=run_status, limit=limit, since=window)
    if as_json:
        echo_json([r.model_dump(mode="json", exclude={"steps"}) for r in found])
    elif not found:
        filtered = flow_slug or run_status or since is not None
        _stderr("No runs found" + (" with these filters" if filtered else ""))
    else:
        console().print(runs_table(found))


@main.command()
@click.argument("run_id")
@database_url_option
def cancel(run_id: str, database_url: str | None) -> None:
    """Cancel a live run: its queued and running tasks are never worked on again."""
    target = resolve_target(database_url)
    with Client(target.url) as client:
        before = client.get_run(run_id)
        after = client.cancel(before.run_id)
    if before.is_finished:
        click.echo(f"Run {after.run_id} is already {after.status}: nothing to cancel")
    else:
        click.echo(f"Cancelled run {after.run_id} of flow {after.flow_slug!r}")


@main.command()
@click.argument("flows_ref", metavar="FLOWS")
@input_option
@click.option("--flow", "flow_slug", default=None, help="The flow to run when FLOWS has several.")
@timeout_option
@click.option(
    "-c",
    "--concurrency",
    type=click.IntRange(min=1),
    default=DEFAULTS.concurrency,
    show_default=True,
)
@click.option("-v", "--verbose", is_flag=True, help="Log every task (on stderr).")
@database_url_option
def run(
    flows_ref: str,
    input_text: str | None,
    flow_slug: str | None,
    timeout: float | None,
    concurrency: int,
    verbose: bool,
    database_url: str | None,
) -> None:
    """Run a flow once, end to end, and print its output as JSON.

    Installs the schema, deploys the flows of FLOWS in development mode (a changed flow
    is recreated), starts a run, works on it in this process until it finishes and prints
    its output. Exits 1 with the failing step's error if the run fails. Ctrl+C cancels
    the run and exits 130; a second Ctrl+C exits at once.
    """
    flows = load_flows(flows_ref)
    flow = _pick(flows, flow_slug, flows_ref)
    value = parse_input(input_text)
    flow.dump_input(value)  # refuse bad input before touching the database
    target = resolve_target(database_url)
    try:
        _install_and_deploy(target.url, flows)
    except KeyboardInterrupt:
        _stderr("Interrupted before the run started")
        raise click.exceptions.Exit(EXIT_INTERRUPTED) from None
    configure_logging("INFO" if verbose else "WARNING")
    _stderr(f"Running flow {flow.slug!r}")
    finished = _run_here(flow, value, target.url, flows, timeout, concurrency)
    with Client(target.url) as client:
        output = client.output(finished)  # values stored by reference fetched
    _stderr(f"Run {finished.run_id} completed in {format_duration(finished.duration)}")
    echo_json(output)


def _run_here(
    flow: Flow, value: Any, url: str, flows: list[Flow], timeout: float | None, concurrency: int
) -> Run:
    """Run the flow in this process; the first Ctrl+C cancels the run, a second exits."""
    started: list[Run] = []
    with Progress() as progress:
        working = run_flow(
            flow,
            value,
            database_url=url,
            flows=flows,
            timeout=timeout,
            on_update=progress.update,
            on_start=started.append,
            concurrency=concurrency,
        )

        def say(stage: str) -> None:
            progress.console.print(_interrupt_line(started, stage), highlight=False, soft_wrap=True)

        try:
            return run_interruptibly(
                working,
                on_first=lambda: say("cancelling"),
                on_second=lambda: _stderr(_interrupt_line(started, "exiting")),
            )
        except Interrupted:
            say("cancelled")
            raise click.exceptions.Exit(EXIT_INTERRUPTED) from None


def _interrupt_line(started: list[Run], stage: str) -> str:
    if not started:
        return "Interrupted before the run started" if stage != "cancelling" else "Interrupted"
    run_id = started[0].run_id
    return {
        "cancelling": f"Interrupted: cancelling run {run_id} (Ctrl+C again to exit at once)",
        "cancelled": f"Cancelled run {run_id}; `pgflow status {run_id}` shows where it stopped",
        "exiting": f"Exiting at once; if run {run_id} is still started: `pgflow cancel {run_id}`",
    }[stage]


def _pick(flows: list[Flow], slug: str | None, reference: str) -> Flow:
    slugs = ", ".join(f.slug for f in flows)
    if slug is not None:
        for flow in flows:
            if flow.slug == slug:
                return flow
        raise FlowLoadError(
            f"{reference} defines no flow {slug!r} (it defines: {slugs})",
            hint="pass one of those slugs to --flow",
        )
    if len(flows) > 1:
        raise FlowLoadError(
            f"{reference} defines {len(flows)} flows ({slugs}); `pgflow run` runs one",
            hint=f"pick one with --flow SLUG, or name it as {reference}:attribute",
        )
    return flows[0]


def _install_and_deploy(url: str, flows: list[Flow]) -> None:
    installed = install_schema(url)
    if installed.applied:
        _stderr(f"Installed the pgflow schema (version {installed.version})")
    with connect(url) as conn:
        results = deploy_flows(conn, flows, dev=True)
    for result in results:
        if result.action != "unchanged":
            _stderr(_deployed_line(result))


def _deployed_line(result: DeployResult) -> str:
    line = f"Deployed flow {result.flow_slug!r}: {result.action}"
    if result.runs_deleted:
        line += f" ({result.runs_deleted} earlier runs deleted)"
    return line
