"""What the templates show, built from the store's rows: previews, map progress, a run.

Values arrive capped by the store (over the cap they are ``{"$truncated": ...}`` markers,
undecodable ones ``{"$undecodable": ...}``); a preview is their indented JSON cut at
:data:`PREVIEW_CHARS`, so no value makes a page large. A map step is summarised as counts
by status plus a capped list of its failed elements, never one element per DOM node.
Pure: no I/O.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from pgflow.cli._preview import format_size, marker_label
from pgflow.ui.dag import Layout, layout
from pgflow.ui.timing import Timing, timing

__all__ = ["MapProgress", "Preview", "RunView", "map_progress", "preview_of", "run_view"]

PREVIEW_CHARS: Final = 4_000
FAILED_SHOWN: Final = 20  # failed elements listed per map step
TASK_STATUSES: Final = ("completed", "failed", "started", "queued", "cancelled")


@dataclass(frozen=True, slots=True)
class Preview:
    """A value as shown: indented JSON (cut), or a marker's label; with its size."""

    text: str
    size: str
    cut: int  # characters left out (0: shown whole)
    marker: bool


def preview_of(value: Any, size: int | None) -> Preview | None:
    """The preview of a stored value (None when there is no value)."""
    if value is None:
        return None
    size_text = format_size(size) if isinstance(size, int) else ""
    label = marker_label(value)
    if label is not None:
        return Preview(label, size_text, 0, marker=True)
    text = json.dumps(value, indent=2, ensure_ascii=False, default=str)
    cut = max(0, len(text) - PREVIEW_CHARS)
    return Preview(text[:PREVIEW_CHARS], size_text, cut, marker=False)


@dataclass(frozen=True, slots=True)
class Segment:
    """A part of a progress bar: tasks in one status, as a percentage of the width."""

    status: str
    count: int
    x: float
    width: float


@dataclass(frozen=True, slots=True)
class MapProgress:
    """A map step: element counts by status and its first failed elements."""

    step_slug: str
    total: int | None
    counts: dict[str, int]
    segments: tuple[Segment, ...]
    failed: tuple[Mapping[str, Any], ...]
    failed_total: int

    @property
    def done(self) -> int:
        """Elements in a terminal status."""
        return sum(self.counts.get(s, 0) for s in ("completed", "failed", "cancelled"))


def map_progress(step: Mapping[str, Any], errors: Sequence[Mapping[str, Any]]) -> MapProgress:
    """Summarise a map step from its task counts and the run's listed errors."""
    counts = {s: int(step["tasks"].get(s, 0)) for s in TASK_STATUSES if step["tasks"].get(s)}
    total = step["initial_tasks"]
    whole = max(total or 0, sum(counts.values()), 1)
    segments, x = [], 0.0
    for status, count in counts.items():
        width = round(count / whole * 100, 3)
        segments.append(Segment(status, count, round(x, 3), width))
        x += width
    failed = tuple(
        e for e in errors if e["step_slug"] == step["step_slug"] and e["status"] == "failed"
    )
    return MapProgress(
        step["step_slug"],
        total,
        counts,
        tuple(segments),
        failed[:FAILED_SHOWN],
        counts.get("failed", 0),
    )


@dataclass(frozen=True, slots=True)
class RunView:
    """Everything the run page shows."""

    run: Mapping[str, Any]
    steps: tuple[Mapping[str, Any], ...]
    dag: Layout
    statuses: dict[str, str]
    maps: tuple[MapProgress, ...]
    timing: Timing
    errors: tuple[Mapping[str, Any], ...]
    input: Preview | None
    output: Preview | None
    outputs: dict[str, Preview | None]

    @property
    def is_live(self) -> bool:
        """Whether the run is still started (it can be cancelled)."""
        return bool(self.run["status"] == "started")

    @property
    def map_slugs(self) -> frozenset[str]:
        """The slugs of the map steps."""
        return frozenset(m.step_slug for m in self.maps)

    @property
    def subtitles(self) -> dict[str, str]:
        """The second line of each step's box: status, map progress, attempt."""
        return {s["step_slug"]: _subtitle(s) for s in self.steps}

    @property
    def can_retry(self) -> bool:
        """Whether the run failed or was cancelled (it can be retried)."""
        return self.run["status"] in ("failed", "cancelled")


def _subtitle(step: Mapping[str, Any]) -> str:
    parts = [str(step["status"])]
    if step["step_type"] == "map" and step["initial_tasks"] is not None:
        parts.append(f"{int(step['tasks'].get('completed', 0)):,}/{step['initial_tasks']:,}")
    if step["attempts"] > 1:
        parts.append(f"attempt {step['attempts']}")
    return " · ".join(parts)


def run_view(
    run: Mapping[str, Any],
    steps: Sequence[Mapping[str, Any]],
    errors: Sequence[Mapping[str, Any]],
) -> RunView:
    """Build the run page's model from the store's rows."""
    return RunView(
        run=run,
        steps=tuple(steps),
        dag=layout(steps),
        statuses={s["step_slug"]: s["status"] for s in steps},
        maps=tuple(map_progress(s, errors) for s in steps if s["step_type"] == "map"),
        timing=timing(run, steps),
        errors=tuple(errors),
        input=preview_of(run["input"], run["input_bytes"]),
        output=preview_of(run["output"], run["output_bytes"]),
        outputs={s["step_slug"]: preview_of(s["output"], s["output_bytes"]) for s in steps},
    )
