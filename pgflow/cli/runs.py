"""Run-facing commands: ``start``, ``status``, ``runs``, ``cancel`` and ``run``.

Data goes to stdout (a run id, JSON output, tables asked for); status lines and progress
go to stderr, so ``RUN=$(pgflow start ...)`` and ``pgflow run ... > out.json`` capture
only the data.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import click

from pgflow.cli._group import database_url_option, main, resolve_target
from pgflow.cli._render import (
    Progress,
    configure_logging,
    console,
    echo_json,
    format_duration,
    run_summary,
    runs_table,
    steps_table,
)
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
@database_url_option
def start(
    slug: str,
    input_text: str | None,
    wait: bool,
    timeout: float | None,
    run_id: str | None,
    database_url: str | None,
) -> None:
    """Start a run of the deployed flow SLUG and print its run id.

    With --wait, show the steps as they progress (on stderr) and print the run's output
    as JSON once it completes; exit 1 with the failing step's error if it fails.
    """
    value = parse_input(input_text)
    target = resolve_target(database_url)
    with Client(target.url) as client:
        started = client.start(slug, value, run_id=run_id)
        if not wait:
            click.echo(str(started.run_id))
            _stderr(f"Started run {started.run_id}; see it with `pgflow status {started.run_id}`")
            return
        _stderr(f"Started run {started.run_id} of flow {slug!r}; waiting for it to finish")
        finished = _follow(client, started, timeout)
    _stderr(f"Run {finished.run_id} completed in {format_duration(finished.duration)}")
    echo_json(finished.output)


def _follow(client: Client, started: Run, timeout: float | None) -> Run:
    last = started
    with Progress() as progress:
        for last in client.watch(started.run_id, timeout):
            progress.update(last)
    return last.raise_for_status()


@main.command()
@click.argument("run_id")
@json_option
@database_url_option
def status(run_id: str, as_json: bool, database_url: str | None) -> None:
    """Show a run and each of its steps: status, attempts, duration, error."""
    target = resolve_target(database_url)
    with Client(target.url) as client:
        found = client.get_run(run_id)
    if as_json:
        echo_json(found.model_dump(mode="json"))
        return
    out = console()
    out.print(run_summary(found))
    out.print()
    out.print(steps_table(found))


@main.command()
@click.option("--flow", "flow_slug", default=None, help="Only runs of this flow.")
@click.option("--status", "run_status", type=click.Choice(RUN_STATUSES), default=None)
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True)
@json_option
@database_url_option
def runs(
    flow_slug: str | None,
    run_status: str | None,
    limit: int,
    as_json: bool,
    database_url: str | None,
) -> None:
    """List recent runs, newest first."""
    target = resolve_target(database_url)
    with Client(target.url) as client:
        found = client.runs(flow_slug=flow_slug, status=run_status, limit=limit)
    if as_json:
        echo_json([r.model_dump(mode="json", exclude={"steps"}) for r in found])
    elif not found:
        _stderr("No runs found" + (" with these filters" if flow_slug or run_status else ""))
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
    its output. Exits 1 with the failing step's error if the run fails.
    """
    flows = load_flows(flows_ref)
    flow = _pick(flows, flow_slug, flows_ref)
    value = parse_input(input_text)
    flow.dump_input(value)  # refuse bad input before touching the database
    target = resolve_target(database_url)
    _install_and_deploy(target.url, flows)
    configure_logging("INFO" if verbose else "WARNING")
    _stderr(f"Running flow {flow.slug!r}")
    with Progress() as progress:
        finished = asyncio.run(
            run_flow(
                flow,
                value,
                database_url=target.url,
                flows=flows,
                timeout=timeout,
                on_update=progress.update,
                concurrency=concurrency,
            )
        )
    _stderr(f"Run {finished.run_id} completed in {format_duration(finished.duration)}")
    echo_json(finished.output)


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
