"""The report's profile section: statements, WAL by record type, a Worker's Python."""

from __future__ import annotations

import math
from typing import Any

from benchmarks.markdown import LAYER, short, table
from benchmarks.records import Records

__all__ = ["section"]


def section(records: Records, headline: int) -> str:
    """Where the time goes, per profiled drain."""
    profiles = records.of_kind("profile")
    if not profiles:
        return (
            "## Where the time goes\n\nNot measured: this server does not preload "
            "`pg_stat_statements` (or the benchmark's role could not install it)."
        )
    parts = [
        "## Where the time goes: `pg_stat_statements` (track = all)\n\n"
        + f"One drain per workload and layer at {headline} workers with nested statements "
        "tracked (not part of the figures above). Share = the statement's execution time ÷ "
        "the time of all top-level statements; nested statements are counted inside their "
        "caller too, so shares add up to more than 100%."
    ]
    for record in profiles:
        statements = record["statements"]
        top_total = sum(s["total_ms"] for s in statements if s["toplevel"]) or math.nan
        rows = [
            [
                f"{s['total_ms'] / top_total:.0%}",
                "top" if s["toplevel"] else "nested",
                f"{s['calls']:,}",
                f"{s['mean_ms']:.3f}",
                f"{s['rows'] / max(s['calls'], 1):.1f}",
                "`" + short(s["query"]) + "`",
            ]
            for s in statements[:8]
        ]
        heads = ["share", "level", "calls", "mean ms", "rows/call", "statement"]
        title = f"### {record['workload']}, {LAYER[record['layer']]} ({record['tasks']:,} tasks)"
        parts.append(title + "\n\n" + table(heads, rows) + _wal_table(record) + _py_table(record))
    return "\n\n".join(parts)


def _wal_table(record: dict[str, Any]) -> str:
    wal = record.get("wal_by_type") or []
    if not wal:
        return ""
    tasks = record["tasks"]
    rows = [
        [
            w["record_type"],
            f"{w['count'] / tasks:.2f}",
            f"{w['record_bytes'] / tasks:,.0f}",
            f"{w['fpi_bytes'] / tasks:,.0f}",
        ]
        for w in wal
    ]
    heads = ["WAL record type", "records/task", "record bytes/task", "full-page image bytes/task"]
    return "\n\n" + table(heads, rows)


def _py_table(record: dict[str, Any]) -> str:
    python = record.get("python") or {}
    total = python.get("samples") or 0
    if not total:
        return ""
    packages = ", ".join(f"{name} {n / total:.0%}" for name, n in python["packages"][:8])
    rows = [
        [f"{n / total:.0%}", "self", "`" + short(f, 90) + "`"] for f, n in python["self"][:8]
    ] + [
        [f"{n / total:.0%}", "inclusive", "`" + short(f, 90) + "`"]
        for f, n in python["inclusive"][:8]
    ]
    return (
        f"\n\nPython in one Worker process (py-spy, {total:,} busy samples; self time by "
        f"file or package: {packages}):\n\n" + table(["share", "", "function"], rows)
    )
