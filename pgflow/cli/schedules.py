"""``pgflow schedules [list|pause SLUG|resume SLUG]``: look at and switch deployed schedules."""

from __future__ import annotations

import click
from rich.table import Table

from pgflow._words import counted
from pgflow.cli._group import database_url_option, main, resolve_target
from pgflow.cli._render import console, echo_json
from pgflow.db.connection import connect
from pgflow.schedules import ScheduleState, list_schedules, pause_schedules

__all__ = ["schedules"]


flow_option = click.option("--flow", "flow_slug", default=None, help="Only this flow's.")
json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON, not a table.")


@main.group(invoke_without_command=True)
@flow_option
@json_option
@database_url_option
@click.pass_context
def schedules(
    ctx: click.Context, flow_slug: str | None, as_json: bool, database_url: str | None
) -> None:
    """Deployed schedules: list (the default), pause SLUG, resume SLUG.

    Schedules are defined in code with flow.schedule("*/5 * * * *", ...) and deployed
    with the flow; running workers start each due tick once.
    """
    if ctx.invoked_subcommand is None:
        ctx.invoke(list_command, flow_slug=flow_slug, as_json=as_json, database_url=database_url)


@schedules.command(name="list")
@flow_option
@json_option
@database_url_option
def list_command(
    flow_slug: str | None = None, as_json: bool = False, database_url: str | None = None
) -> None:
    """List deployed schedules with their last and next tick."""
    target = resolve_target(database_url)
    with connect(target.url) as conn:
        found = list_schedules(conn, flow_slug)
    if as_json:
        echo_json([state.to_json() for state in found])
    elif not found:
        click.echo("no schedules deployed" + (f" for flow {flow_slug!r}" if flow_slug else ""))
    else:
        console().print(_table(found))


def _table(found: list[ScheduleState]) -> Table:
    table = Table("flow", "name", "cron", "zone", "catch up", "state", "last tick", "next tick")
    for s in found:
        table.add_row(
            s.flow_slug, s.name, s.cron, s.timezone, s.catch_up,
            "paused" if s.paused else "active",
            s.last_tick.isoformat(timespec="seconds") if s.last_tick else "-",
            s.next_tick.isoformat(timespec="seconds") if s.next_tick else "-",
        )  # fmt: skip
    return table


def _switch(flow_slug: str, name: str | None, database_url: str | None, *, paused: bool) -> None:
    target = resolve_target(database_url)
    with connect(target.url) as conn:
        changed = pause_schedules(conn, flow_slug, paused=paused, name=name)
    verb = "paused" if paused else "resumed"
    if changed:
        what = f"schedule {name!r}" if name else counted(changed, "schedule")
        click.echo(f"{verb} {what} of flow {flow_slug!r}")
    else:
        click.echo(f"flow {flow_slug!r}: {f'schedule {name!r}' if name else 'all'} already {verb}")


name_option = click.option("--name", default=None, help="Only the schedule with this name.")


@schedules.command()
@click.argument("flow_slug", metavar="SLUG")
@name_option
@database_url_option
def pause(flow_slug: str, name: str | None, database_url: str | None) -> None:
    """Pause the schedules of flow SLUG: no tick starts until resumed."""
    _switch(flow_slug, name, database_url, paused=True)


@schedules.command()
@click.argument("flow_slug", metavar="SLUG")
@name_option
@database_url_option
def resume(flow_slug: str, name: str | None, database_url: str | None) -> None:
    """Resume the schedules of flow SLUG; ticks missed while paused are not started."""
    _switch(flow_slug, name, database_url, paused=False)
