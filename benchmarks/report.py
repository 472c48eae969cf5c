"""Turn a run's records into ``latest.md`` (Markdown tables) and ``raw.jsonl``.

Every figure is the mean of its repetitions, shown with its spread (half the range of the
repetitions, as a percentage of the mean). The raw records keep every repetition.
"""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks import report_baseline, report_profiles, targets
from benchmarks.config import Config
from benchmarks.markdown import LAYER, X, pct, rate, seconds, table, workers
from benchmarks.numbers import spread
from benchmarks.records import Records

__all__ = ["write"]

HEADLINE = 4  # the worker count the ratios are taken at
_STAGES = {
    "start_to_worker_woken": "… stage 1: `start_flow` called → worker woken by NOTIFY",
    "claim_round_trip": "… stage 2: `claim_tasks` round trip",
    "claimed_to_client_notified": "… stage 3: `complete_tasks` called → client has `run:completed`",
}


def write(
    out: Path,
    config: Config,
    facts: dict[str, Any],
    missing: dict[str, str | None],
    records: list[dict[str, Any]],
) -> Path:
    """Write ``latest.md`` and ``raw.jsonl`` into ``out`` (and a dated copy of the raw)."""
    out.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    lines = [
        json.dumps({"kind": "machine", "run": config.name, "utc": stamp, **facts}),
        json.dumps({"kind": "config", "missing": missing, **_config_dict(config)}),
        *(json.dumps(record, default=str) for record in records),
    ]
    raw = "\n".join(lines) + "\n"
    (out / "raw.jsonl").write_text(raw)
    archive = out / "raw"
    archive.mkdir(exist_ok=True)
    (archive / f"{stamp.replace(':', '')}-{config.name}.jsonl").write_text(raw)
    markdown = render(config, facts, missing, Records(records), stamp)
    path = out / "latest.md"
    path.write_text(markdown)
    return path


def _config_dict(config: Config) -> dict[str, Any]:
    return {name: getattr(config, name) for name in config.__dataclass_fields__}


def render(
    config: Config,
    facts: dict[str, Any],
    missing: dict[str, str | None],
    records: Records,
    stamp: str,
) -> str:
    """The whole Markdown report."""
    sections = [
        _title(config, stamp),
        _machine(facts),
        _throughput(config, records, missing),
        _fanout(config, records),
        _latency(records),
        _growth(config, records),
        _cost(records),
        _peers(config, records, missing),
        report_baseline.baseline_section(records, config.baseline_workers, missing.get("pgflow")),
        report_baseline.contention_section(records, (HEADLINE,)),
        targets.section(config, records, HEADLINE),
        report_profiles.section(records, HEADLINE),
    ]
    return "\n\n".join(section for section in sections if section) + "\n"


def _title(config: Config, stamp: str) -> str:
    lines = [f"# pgflow benchmarks: {config.name} run, {stamp}"]
    if config.name == "quick":
        lines.append(
            "\n> **Quick run** (`--quick`): sizes are about a tenth of the full run's, so "
            "fixed costs weigh more and the targets are indicative only. The report's figures "
            "come from a full run (`.venv/bin/python -m benchmarks`)."
        )
    lines.append(
        f"\nEvery figure is the mean of {config.repetitions} repetitions; ± is half their "
        "range as a share of the mean. Raw records: `raw.jsonl`. What each workload measures: "
        "`docs/performance.md`."
    )
    return "\n".join(lines)


def _machine(facts: dict[str, Any]) -> str:
    settings = facts["settings"]
    load = (
        f"{_load(facts['loadavg_at_start'])} at start, {_load(facts.get('loadavg_at_end'))} at end"
    )
    rows = [
        ("CPU", f"{facts['cores']} cores, {facts['cpu_model']}"),
        ("memory", f"{facts['memory_gib']} GiB"),
        ("OS", facts["os"]),
        ("Python / psycopg", f"{facts['python']} / {facts['psycopg']}"),
        ("PostgreSQL", facts["postgres"].split(" on ")[0] + f" ({facts['server']} server)"),
        *((name, settings[name]) for name in settings if name != "server_version"),
        ("load average (1, 5, 15 min)", load),
        ("wall time of the run", f"{facts.get('wall_seconds', '?')} s"),
    ]
    return "## Machine\n\n" + table(["", ""], rows)


def _load(values: Sequence[float] | None) -> str:
    return "?" if not values else " / ".join(f"{v:.2f}" for v in values)


def _throughput(config: Config, records: Records, missing: dict[str, str | None]) -> str:
    rows = []
    for workload in ("independent", "chain", "diamond", "fanout"):
        for layer in ("core", "worker"):
            if layer == "worker" and missing.get("worker"):
                rows.append([workload, LAYER[layer], *["not available"] * len(config.workers)])
                continue
            rows.append(
                [
                    workload,
                    LAYER[layer],
                    *(rate(records.drain_rates(workload, layer, n)) for n in config.workers),
                ]
            )
    heads = ["workload", "layer", *(workers(n) for n in config.workers)]
    note = (
        f"SQL-core loop: one process and one connection per worker, `claim_tasks(max_tasks => "
        f"{config.core_batch})` then one `complete_tasks` call for the batch. pgflow.Worker: "
        f"one Worker per process, `concurrency={config.worker_concurrency}, "
        f"batch_size={config.worker_batch}`, empty async handlers. Sizes: independent "
        f"{config.independent_runs:,} one-step runs; chain {config.chain_runs:,} runs {X} 10 "
        f"steps; diamond {config.diamond_runs:,} runs {X} (root + 8 + join); fan-out one run, "
        f"root → map over {config.fanout_elements:,} → reduce. All runs started up front, "
        "then drained; the clock runs from the moment every worker is connected and ready "
        "(a Worker: started up, at its first claim) until the last completion is committed."
    )
    shutdowns = [
        m["shutdown_s"] for r in records.of_kind("drain") for m in r["members"] if "shutdown_s" in m
    ]
    if shutdowns:
        note += (
            " A Worker drain ends when the last Worker has returned from its graceful stop "
            f"(requested once every task was handled; {statistics.fmean(shutdowns) * 1000:.0f}"
            " ms on average, included)."
        )
    return (
        "## Throughput (tasks/s)\n\n"
        + table(heads, rows)
        + "\n\n"
        + note
        + _with_start(config, records, missing)
    )


def _with_start(config: Config, records: Records, missing: dict[str, str | None]) -> str:
    rows = [
        [workload, LAYER[layer],
         *(rate(records.start_drain_rates(workload, layer, n)) for n in config.workers)]
        for workload in ("independent", "chain", "diamond")
        for layer in ("core", "worker")
        if not (layer == "worker" and missing.get("worker"))
    ]  # fmt: skip
    heads = ["workload", "layer", *(workers(n) for n in config.workers)]
    note = (
        "The same drains, counting the time to start their runs too (on as many connections "
        "as workers, each starting its share in one statement, just before the drain). "
        + report_baseline.WHY_START
    )
    return "\n\n### Start + drain (tasks/s)\n\n" + table(heads, rows) + "\n\n" + note


def _fanout(config: Config, records: Records) -> str:
    rows = []
    for layer in ("core", "worker"):
        times = [records.drain_seconds("fanout", layer, n) for n in config.workers]
        if any(times):
            rows.append([LAYER[layer], *(seconds(t) for t in times)])
    if not rows:
        return ""
    heads = ["layer", *(workers(n) for n in config.workers)]
    return (
        f"## Fan-out: wall time of one run with a {config.fanout_elements:,}-element map (s)\n\n"
        + table(heads, rows)
        + "\n\nFrom the gate opening (the run already started) to the run's last task committed."
    )


def _latency(records: Records) -> str:
    rows = []
    for layer in ("core", "worker"):
        single = records.latency(layer, "bench_single")
        if single:
            rows.append(_latency_row("one-step run: start → `run:completed` at the client",
                                     layer, single, "total_ms"))  # fmt: skip
            rows.append(_latency_row("… of which `start_flow` round trip", layer, single,
                                     "start_ms"))  # fmt: skip
        for stage, label in _STAGES.items():
            with_stages = [r for r in single if "stages_ms" in r]
            if with_stages:
                stages = [{"x": r["stages_ms"][stage]} for r in with_stages]
                rows.append(_latency_row(label, layer, stages, "x"))
        chain = records.latency(layer, "bench_chain")
        if chain:
            rows.append(_latency_row("10-step chain run, start → completed, ÷ 10 steps", layer,
                                     chain, "total_ms", 10))  # fmt: skip
    dispatch = records.of_kind("dispatch")
    if dispatch:
        rows.append(_latency_row("chain dispatch: step k committed → step k+1 claimed", "core",
                                 dispatch, "dispatch_ms"))  # fmt: skip
        rows.append(_latency_row("… of which the wake-up notification in hand", "core",
                                 dispatch, "wake_ms"))  # fmt: skip
    if not rows:
        return ""
    heads = ["what (idle system, one at a time)", "layer", "mean", "p50", "p95", "± (mean)"]
    note = (
        "The worker is one LISTEN-driven process (the SQL-core loop or a pgflow.Worker), idle "
        "when each run starts; the client LISTENs on `pgflow_run_<run_id>` before "
        "`start_flow`. Dispatch is timed inside one SQL-core worker that claims only when "
        "notified (`docs/performance.md`)."
    )
    return "## Idle latency (ms)\n\n" + table(heads, rows) + "\n\n" + note


def _latency_row(
    what: str, layer: str, recs: list[dict[str, Any]], key: str, divide: int = 1
) -> list[str]:
    def stat(name: str) -> float:
        return statistics.fmean(r[key][name] for r in recs) / divide

    means = spread([r[key]["mean"] / divide for r in recs])
    return [
        what,
        LAYER[layer],
        f"{stat('mean'):.2f}",
        f"{stat('p50'):.2f}",
        f"{stat('p95'):.2f}",
        pct(means["spread"]),
    ]


def _growth(config: Config, records: Records) -> str:
    rows = []
    for layer in ("core", "worker"):
        for n in config.workers:
            empty = records.drain_rates("growth_empty", layer, n)
            grown = records.drain_rates("growth", layer, n)
            if not grown:
                continue
            ratio = spread(grown)["mean"] / spread(empty)["mean"] if empty else math.nan
            rows.append([LAYER[layer], str(n), rate(empty), rate(grown), f"{ratio:.2f}"])
    if not rows:
        return ""
    seed = records.of_kind("growth_seed")
    how = ""
    if seed:
        s = seed[0]
        how = (
            f"\n\n{s['tasks']:,} finished one-step runs (runs, step states, tasks: "
            f"{s['tables_bytes'] / 2**20:,.0f} MiB) inserted set-based in "
            f"{s['insert_seconds']:.1f} s, then `VACUUM ANALYZE`; the independent workload "
            "then ran on top of them, each drain paired with one on empty tables run just "
            "before it (in another database of the same server), so load changes on a shared "
            "machine hit both sides."
        )
    heads = ["layer", "workers", "empty tables", f"after {config.growth_tasks:,} tasks", "ratio"]
    return "## Growth (independent tasks/s)\n\n" + table(heads, rows) + how


def _cost(records: Records) -> str:
    rows = []
    for workload in ("independent", "chain", "diamond", "fanout", "growth"):
        for layer in LAYER:
            recs = records.drains(workload, layer, HEADLINE)
            if recs:
                rows.append([f"{workload}: drain", LAYER[layer], *_costs(recs, "cost_per_task")])
        recs = records.drains(workload, "core", HEADLINE)
        if recs and workload != "growth":
            rows.append([f"{workload}: start_flow, per task", "—",
                         *_costs(recs, "start_cost_per_task")])  # fmt: skip
    pgbench = [r for r in records.of_kind("pgbench") if r["clients"] == HEADLINE]
    if pgbench:
        rows.append(
            ["pgbench UPDATE+INSERT, per transaction", "—", *_costs(pgbench, "cost_per_tx")]
        )
    procrastinate = [r for r in records.of_kind("procrastinate") if r["workers"] == HEADLINE]
    if procrastinate:
        rows.append(["Procrastinate no-op job: drain", "—", *_costs(procrastinate, "cost_per_job")])
    heads = ["per task", "layer", "worker CPU µs", "Postgres CPU µs", "commits", "WAL bytes",
             "full-page images", "inserted", "updated", "deleted"]  # fmt: skip
    note = (
        f"At {HEADLINE} workers, from `pg_stat_database` (this database), "
        "`pg_current_wal_lsn()` and `pg_stat_wal` (whole cluster) deltas, each drain after a "
        "`CHECKPOINT`. Tuples are heap rows written (index entries not counted). CPU: the "
        "worker processes' own CPU time, and the whole Postgres server's (backends, WAL "
        "writer, checkpointer, autovacuum) from its postmaster's process accounting."
    )
    return "## Cost per task\n\n" + table(heads, rows) + "\n\n" + note


def _costs(recs: list[dict[str, Any]], key: str) -> list[str]:
    def mean(name: str) -> float:
        return statistics.fmean(r[key].get(name, math.nan) for r in recs)

    def cpu(name: str) -> str:
        return "—" if math.isnan(mean(name)) else f"{mean(name):,.0f}"

    return [
        cpu("client_cpu_us"),
        cpu("server_cpu_us"),
        f"{mean('commits'):.3f}",
        f"{mean('wal_bytes'):,.0f}",
        f"{mean('wal_fpi'):.3f}",
        f"{mean('tup_inserted'):.2f}",
        f"{mean('tup_updated'):.2f}",
        f"{mean('tup_deleted'):.2f}",
    ]


def _peers(config: Config, records: Records, missing: dict[str, str | None]) -> str:
    pg_rows = [
        [f"pgbench UPDATE+INSERT, {c} clients", "TPS", rate(records.pgbench_tps(c))]
        for c in config.pgbench_clients
    ]
    if missing.get("procrastinate"):
        pc_rows = [
            [f"Procrastinate no-op jobs, {n} workers", "jobs/s", "not measured"]
            for n in config.workers
        ]
        why = f"\n\nProcrastinate: {missing['procrastinate']}"
    else:
        pc_rows = [
            [f"Procrastinate no-op jobs, {n} workers", "jobs/s", rate(records.procrastinate(n))]
            for n in config.workers
        ]
        why = ""
    from benchmarks.peers import PROCRASTINATE_CONCURRENCY

    note = (
        f"pgbench: `-M prepared -j 2 -T {config.pgbench_seconds}`, scale 1, custom script "
        "`BEGIN; UPDATE pgbench_accounts …; INSERT INTO pgbench_history …; END;` "
        f"Procrastinate: {config.procrastinate_jobs:,} jobs deferred in one batch, then "
        f"drained by that many processes, each a worker with `concurrency="
        f"{PROCRASTINATE_CONCURRENCY}, wait=False`."
    )
    return (
        "## Side by side, same server, same run\n\n"
        + table(["baseline", "unit", "mean"], pg_rows + pc_rows)
        + "\n\n"
        + note
        + why
        + "\n\n"
        + _ratios(config, records, missing)
    )


def _ratios(config: Config, records: Records, missing: dict[str, str | None]) -> str:
    pgbench = spread(records.pgbench_tps(HEADLINE))["mean"]
    rows = []
    for workload in ("independent", "chain", "diamond", "fanout"):
        for layer in ("core", "worker"):
            for n in config.workers:
                ours = records.drain_rates(workload, layer, n)
                if not ours:
                    continue
                mean = spread(ours)["mean"]
                peer = records.procrastinate(n)
                vs_peer = (
                    "not measured"
                    if missing.get("procrastinate") or not peer
                    else f"{mean / spread(peer)['mean']:.1f}{X}"
                )
                rows.append([workload, LAYER[layer], str(n), f"{mean / pgbench:.2f}{X}", vs_peer])
    heads = ["workload", "layer", "workers", f"÷ pgbench TPS ({HEADLINE} clients)",
             "÷ Procrastinate jobs/s (same workers)"]  # fmt: skip
    return "### Ratios (tasks/s)\n\n" + table(heads, rows)
