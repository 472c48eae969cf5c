"""A focused run: some scenarios at some worker counts, figures into one JSON file.

``python -m benchmarks --only independent,contention --workers 4 --json out.json`` runs on
a fresh server like the full suite, but only the scenarios named, at the worker counts
given, ``--repetitions`` times (default 1), each throughput workload on every layer
(``--layers``; default SQL core, pgflow.Worker, SQL API same protocol, pgflow 0.8.1).
It prints the tables and writes, with ``--json``::

    {"kind": "focused", "command": [...], "utc": "...", "pgflow_commit": "…",
     "pgflow_dirty": bool, "machine": {...}, "loadavg_before": [1, 5, 15],
     "loadavg_after": [...], "wall_seconds": s, "config": {...}, "scenarios": [...],
     "workers": [...], "layers": [...], "skipped": {"pgflow": null | "why"},
     "summary": {workload: {workers: {"tasks_per_s": {layer: x}, "x_pgflow": {layer: r}}},
                 "contention": {workers: {...}}},
     "records": [one per drain]}

It writes nothing under ``benchmarks/results/``.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import platform
import subprocess
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks import contention, pgflow_ts, report_baseline, worker_layer
from benchmarks.config import Config
from benchmarks.crew import Crew
from benchmarks.flows import deploy
from benchmarks.records import Records
from benchmarks.server import Server, machine_facts, open_server
from benchmarks.workloads import Workload, measure_drain, workloads

__all__ = ["LAYERS", "SCENARIOS", "Focus", "git_commit", "run_focused"]

logger = logging.getLogger("benchmarks")

SCENARIOS = (*report_baseline.THROUGHPUT, "contention")
LAYERS = report_baseline.LAYERS
ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True, slots=True)
class Focus:
    """What a focused run measures, and where its JSON goes."""

    scenarios: tuple[str, ...]
    workers: tuple[int, ...]
    layers: tuple[str, ...] = LAYERS
    repetitions: int = 1
    json_path: Path | None = None
    command: tuple[str, ...] = ()


def run_focused(config: Config, database_url: str | None, focus: Focus) -> dict[str, Any]:
    """Run the scenarios; write the JSON (when asked) and return it."""
    load_before, began = os.getloadavg(), time.monotonic()
    config = dataclasses.replace(config, workers=focus.workers, repetitions=focus.repetitions)
    throughput = [w for w in workloads(config) if w.name in focus.scenarios]
    records: list[dict[str, Any]] = []
    skipped: dict[str, str | None] = {}
    with open_server(database_url) as server, Crew(max(focus.workers)) as crew:
        deploy(server.url)
        facts = machine_facts(server)
        targets = _targets(server, focus, bool(throughput), skipped)
        if "contention" in focus.scenarios:
            skipped["contention"] = worker_layer.available()
            if skipped["contention"] is None:
                contention.prepare(server)
        contended = "contention" in focus.scenarios and skipped["contention"] is None
        _warm_up(server, targets, crew, config, contended)
        for rep in range(focus.repetitions):
            for workload in throughput:
                for layer, target in targets.items():
                    for n in focus.workers:
                        records.append(_drain(target, crew, config, workload, layer, n, rep))
            if contended:
                for n in focus.workers:
                    for record in contention.measure(server, crew, config, n, rep):
                        records.append(_stamp(record, rep))
                        _log(record)
    result = _result(config, focus, facts, skipped, records, load_before, began)
    if focus.json_path is not None:
        focus.json_path.write_text(json.dumps(result, indent=1, default=str) + "\n")
    return result


def _targets(
    server: Server, focus: Focus, throughput: bool, skipped: dict[str, str | None]
) -> dict[str, Server]:
    """The database each layer drains (pgflow 0.8.1 has its own); unavailable ones skipped."""
    targets: dict[str, Server] = {}
    if not throughput:
        return targets
    for layer in focus.layers:
        if layer == "worker" and (why := worker_layer.available()):
            skipped["worker"] = why
        elif layer == "pgflow":
            baseline, skipped["pgflow"] = pgflow_ts.open_baseline(server)
            if baseline is not None:
                targets[layer] = baseline
        else:
            targets[layer] = server
    return targets


def _warm_up(
    server: Server, targets: dict[str, Server], crew: Crew, config: Config, contended: bool
) -> None:
    """One small untimed drain per layer (a fresh server's caches and plans)."""
    small = Workload("warm_up", "bench_single", 500, 500, "task")
    layers = {**targets, **({"worker": server} if contended else {})}
    for layer, target in layers.items():
        measure_drain(target, crew, config, small, layer=layer, workers=min(2, crew.size))
    logger.info("warmed up")


def _drain(
    target: Server, crew: Crew, config: Config, workload: Workload, layer: str, n: int, rep: int
) -> dict[str, Any]:
    record = _stamp(measure_drain(target, crew, config, workload, layer=layer, workers=n), rep)
    _log(record)
    return record


def _stamp(record: dict[str, Any], rep: int) -> dict[str, Any]:
    record.update(rep=rep, loadavg=os.getloadavg())
    record.pop("statements", None)
    record.pop("wal_by_type", None)
    return record


def _log(record: dict[str, Any]) -> None:
    logger.info(
        "%s %s %s%d workers: %.0f tasks/s in %.2f s (load %.2f)",
        record["workload"], record["layer"], f"{record['variant']} " if "variant" in record else "",
        record["workers"], record["tasks_per_s"], record["seconds"], record["loadavg"][0],
    )  # fmt: skip


def _result(
    config: Config,
    focus: Focus,
    facts: dict[str, Any],
    skipped: dict[str, str | None],
    records: list[dict[str, Any]],
    load_before: tuple[float, float, float],
    began: float,
) -> dict[str, Any]:
    commit, dirty = git_commit()
    return {
        "kind": "focused",
        "command": list(focus.command),
        "utc": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "pgflow_commit": commit,
        "pgflow_dirty": dirty,
        "machine": {**facts, "kernel": platform.release()},
        "loadavg_before": load_before,
        "loadavg_after": os.getloadavg(),
        "wall_seconds": round(time.monotonic() - began, 1),
        "config": {name: getattr(config, name) for name in config.__dataclass_fields__},
        "scenarios": list(focus.scenarios),
        "workers": list(focus.workers),
        "layers": list(focus.layers),
        "skipped": skipped,
        "summary": report_baseline.summary(Records(records), focus.workers),
        "records": records,
    }


def git_commit() -> tuple[str | None, bool | None]:
    """pgflow-py's commit, and whether the work tree differs from it (read-only git)."""
    env = {**os.environ, "GIT_OPTIONAL_LOCKS": "0"}

    def git(*args: str) -> subprocess.CompletedProcess[str]:
        command = ["git", "-C", str(ROOT), *args]
        return subprocess.run(
            command, check=False, capture_output=True, text=True, env=env, timeout=30
        )

    try:
        head = git("rev-parse", "HEAD")
        if head.returncode != 0:
            return None, None
        diff = git("diff-index", "--quiet", "HEAD", "--")
    except (OSError, subprocess.SubprocessError):
        return None, None
    return head.stdout.strip(), diff.returncode != 0
