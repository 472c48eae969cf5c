"""The viewer's Jinja2 environment: templates shipped in the package, autoescape always on.

Every value from run data goes through a template with autoescaping, so text stored in
a run (an output, an error message, a traceback, a slug) is shown, never interpreted; no
filter in this module marks text as safe. Fragments (the runs table, a run's live part)
are rendered here too, once per change, for every browser that watches them.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined

from pgflow.cli._render import format_duration

__all__ = ["environment", "render_fragment"]


def _when(value: datetime | None) -> str:
    return "" if value is None else value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _iso(value: datetime | None) -> str:
    return "" if value is None else value.astimezone(UTC).isoformat()


def _elapsed(start: datetime | None, end: datetime | None) -> str:
    if start is None or end is None:
        return ""
    return format_duration(max(end - start, timedelta(0)))


def _count(value: int | None) -> str:
    return "" if value is None else f"{value:,}"


def environment() -> Environment:
    """The templates of ``pgflow/ui/templates`` with the viewer's filters."""
    env = Environment(
        loader=PackageLoader("pgflow.ui", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(when=_when, iso=_iso, count=_count)
    env.globals.update(elapsed=_elapsed)
    return env


def render_fragment(env: Environment, name: str, context: Mapping[str, Any]) -> str:
    """Render a template without a request (a live fragment shared by browsers)."""
    return env.get_template(name).render(**context)
