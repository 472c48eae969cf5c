"""Markdown helpers shared by the report's sections."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

from benchmarks.numbers import spread

__all__ = ["LAYER", "X", "pct", "rate", "seconds", "short", "table", "workers"]

X = "\N{MULTIPLICATION SIGN}"
LAYER = {
    "core": "SQL core",
    "worker": "pgflow.Worker",
    "sqlapi": "SQL API, same protocol",
    "pgflow": "pgflow 0.8.1",
}


def workers(n: int) -> str:
    """``1 worker``, ``4 workers``."""
    return f"{n} worker" + ("s" if n != 1 else "")


def rate(values: Sequence[float]) -> str:
    """Mean of repetitions with its spread, as a rate (one value: no spread)."""
    if not values:
        return "—"
    if len(values) == 1:
        return f"{values[0]:,.0f}"
    s = spread(values)
    return f"{s['mean']:,.0f} {pct(s['spread'])}"


def seconds(values: Sequence[float] | None) -> str:
    """Mean of repetitions with its spread, in seconds."""
    if not values:
        return "—"
    s = spread(values)
    return f"{s['mean']:.2f} {pct(s['spread'])}"


def pct(value: float) -> str:
    """``±12%`` (empty for NaN)."""
    return "" if math.isnan(value) else f"±{value:.0%}"


def short(text: str, width: int = 110) -> str:
    """One table cell's worth of text: pipes escaped, cut at ``width``."""
    text = text.replace("|", "\\|").replace("`", "'")
    return text if len(text) <= width else text[: width - 1] + "…"


def table(heads: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """A Markdown table."""
    lines = ["| " + " | ".join(heads) + " |", "|" + "---|" * len(heads)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)
