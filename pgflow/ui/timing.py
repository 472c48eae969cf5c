"""The timing chart of a run: one bar per step, placed on the run's time axis.

Each bar has two parts: *waiting* from when the step became ready (its tasks were queued)
to the first claim of its current attempt, and *running* from that claim to when the step
finished (or now, while it runs). pgflow keeps only the latest attempt's claim time per
task, so for a step retried after failures the waiting part covers the earlier attempts;
the label then says which attempt ran last. Positions are percentages of the axis (SVG
attributes, no inline styles). Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pgflow.cli._render import format_duration

__all__ = ["Bar", "Timing", "timing"]


@dataclass(frozen=True, slots=True)
class Bar:
    """One step's bar: percentages of the axis, and its label."""

    step_slug: str
    status: str
    wait_x: float
    wait_width: float
    run_x: float
    run_width: float
    label: str


@dataclass(frozen=True, slots=True)
class Timing:
    """The chart: a bar per started step, and the axis length as text."""

    bars: tuple[Bar, ...]
    total: str


def _percent(moment: datetime, start: datetime, span: float) -> float:
    return round(max(0.0, min(100.0, (moment - start).total_seconds() / span * 100)), 3)


def _label(step: Mapping[str, Any], ran: timedelta | None) -> str:
    parts = [format_duration(ran) if ran is not None else ""]
    attempts = int(step.get("attempts") or 0)
    if step.get("step_type") == "map":
        total = step.get("initial_tasks")
        parts.append(f"{total:,} elements" if total is not None else "")
    if attempts > 1:
        parts.append(f"attempt {attempts}")
    return " · ".join(p for p in parts if p)


def _bar(step: Mapping[str, Any], start: datetime, end: datetime, span: float) -> Bar:
    ready: datetime = step["started_at"]
    finished: datetime = step["finished_at"] or end
    claimed: datetime = min(step["first_claimed_at"] or finished, finished)
    claimed = max(claimed, ready)
    wait_x, run_x = _percent(ready, start, span), _percent(claimed, start, span)
    run_end = _percent(finished, start, span)
    ran = finished - claimed if step["first_claimed_at"] else None
    return Bar(
        step_slug=step["step_slug"],
        status=step["status"],
        wait_x=wait_x,
        wait_width=round(run_x - wait_x, 3),
        run_x=run_x,
        run_width=round(max(run_end - run_x, 0.4), 3),  # an instant still shows
        label=_label(step, ran),
    )


def timing(run: Mapping[str, Any], steps: Sequence[Mapping[str, Any]]) -> Timing:
    """Bars for the steps that started, on an axis from the run's start to its end (or now).

    ``run`` needs ``started_at``, ``finished_at`` and ``now`` (the database's clock, so a
    live run is measured on the server's time); steps need ``started_at``,
    ``first_claimed_at`` and ``finished_at``.
    """
    start: datetime = run["started_at"]
    end: datetime = run["finished_at"] or run["now"]
    span = max((end - start).total_seconds(), 0.001)
    bars = tuple(_bar(s, start, end, span) for s in steps if s["started_at"] is not None)
    return Timing(bars, format_duration(end - start))
