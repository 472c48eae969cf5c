"""The order of a benchmark run, and the records it produces.

1. throughput: each workload, layer and worker count, repetitions outermost (so a figure's
   repetitions are spread over the run and its spread shows how the machine varied);
2. idle latency (one-step runs, whole chains) per layer, and chain dispatch;
3. pgbench and Procrastinate on the same server; pgflow 0.8.1's SQL core (its own
   database) and our SQL API driven the same way, at ``baseline_workers`` workers, inside
   step 1's loop; the contention workload (``benchmarks.contention``);
4. a profile pass: each workload once at 4 workers with ``pg_stat_statements.track =
   all`` (statements inside the plpgsql functions) and the WAL it wrote by record type
   (``pg_walinspect``), not counted in the figures;
5. growth: a second database gets a large finished history; the independent workload
   then runs in pairs, on empty tables and on that database back to back (and the grown
   side is profiled likewise).

An untimed drain per layer warms a fresh server up first.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict

from benchmarks import (
    contention,
    dbstats,
    latency,
    peers,
    pgflow_ts,
    pyprofile,
    report,
    worker_layer,
)
from benchmarks.config import Config
from benchmarks.crew import Crew
from benchmarks.flows import deploy
from benchmarks.growth import seed_history
from benchmarks.server import Server, install_extension, machine_facts, open_server
from benchmarks.workloads import Workload, measure_drain, reset_runtime, workloads

__all__ = ["run_suite"]

logger = logging.getLogger("benchmarks")

PROFILE_WORKERS = 4
BASELINES = ("sqlapi", "pgflow")  # measured at config.baseline_workers


class _Recorder:
    """Collects records, stamping each with its repetition, time and machine load."""

    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []
        self.began = time.monotonic()

    def add(self, record: dict[str, Any], **extra: Any) -> dict[str, Any]:
        record.update(extra, at_s=round(time.monotonic() - self.began, 1))
        record["loadavg"] = os.getloadavg()
        self.records.append(record)
        return record


def run_suite(config: Config, database_url: str | None, out: Path) -> Path:
    """Run everything; write ``latest.md`` and ``raw.jsonl`` into ``out``; return the .md."""
    recorder = _Recorder()
    with open_server(database_url) as server, Crew(max(config.workers)) as crew:
        deploy(server.url)
        facts = machine_facts(server)
        logger.info("server ready (%s): %s", server.kind, facts["postgres"])
        missing = {
            "worker": worker_layer.available(),
            "procrastinate": peers.procrastinate_missing(),
        }
        layers = ["core"] + ([] if missing["worker"] else ["worker"])
        for name, why in missing.items():
            if why:
                logger.warning("%s: not measured. %s", name, why)
        baseline, missing["pgflow"] = pgflow_ts.open_baseline(server)
        targets = {layer: server for layer in [*layers, "sqlapi"]}
        targets.update({} if baseline is None else {"pgflow": baseline})
        _warm_up(targets, crew, config)
        _throughput(targets, crew, config, recorder)
        _latency(server, crew, config, layers, recorder)
        _peers(server, crew, config, missing["procrastinate"], recorder)
        if not missing["worker"]:
            _contention(server, crew, config, recorder)
        if server.stat_statements:
            _profiles(server, crew, config, layers, recorder, workloads(config))
        _growth(server, crew, config, layers, recorder)
        facts["loadavg_at_end"] = os.getloadavg()
        facts["wall_seconds"] = round(time.monotonic() - recorder.began, 1)
    return report.write(out, config, facts, missing, recorder.records)


def _warm_up(targets: dict[str, Server], crew: Crew, config: Config) -> None:
    """One untimed drain per layer: a fresh server's caches, catalogs and plans warm up."""
    base = workloads(config)[0]
    small = Workload("warm_up", base.flow, base.runs // 10, base.tasks // 10, base.leaf)
    for layer, target in targets.items():
        workload = small if layer in BASELINES else base  # ~5x slower per task
        measure_drain(target, crew, config, workload, layer=layer, workers=2)
    logger.info("warmed up")


def _throughput(
    targets: dict[str, Server], crew: Crew, config: Config, recorder: _Recorder
) -> None:
    """Every workload on every layer; the baselines' layers at ``baseline_workers`` only."""
    for workload in workloads(config):
        for rep in range(config.repetitions):
            for layer, target in targets.items():
                counts = config.baseline_workers if layer in BASELINES else config.workers
                for workers in counts:
                    record = measure_drain(
                        target, crew, config, workload, layer=layer, workers=workers
                    )
                    _log_drain(recorder.add(record, rep=rep))


def _contention(server: Server, crew: Crew, config: Config, recorder: _Recorder) -> None:
    """The contention workload at the headline worker count (``benchmarks.contention``)."""
    contention.prepare(server)
    for rep in range(config.repetitions):
        for record in contention.measure(server, crew, config, PROFILE_WORKERS, rep):
            recorder.add(record, rep=rep)
            logger.info(
                "contention %s: %.0f tasks/s, writer %.0f TPS",
                record["variant"], record["tasks_per_s"], record["writer"]["tps"],
            )  # fmt: skip


def _latency(
    server: Server, crew: Crew, config: Config, layers: list[str], recorder: _Recorder
) -> None:
    reset_runtime(server.url)
    for rep in range(config.repetitions):
        for layer in layers:
            for flow, samples in (
                ("bench_single", config.latency_samples),
                ("bench_chain", max(config.latency_samples // 4, 5)),
            ):
                record = latency.measure_run_latency(
                    server, crew, config, layer=layer, flow=flow, samples=samples
                )
                recorder.add(record, rep=rep)
                logger.info(
                    "latency %s %s: mean %.2f ms, p95 %.2f ms",
                    flow, layer, record["total_ms"]["mean"], record["total_ms"]["p95"],
                )  # fmt: skip
        record = recorder.add(latency.measure_dispatch(server, crew, config.dispatch_runs), rep=rep)
        logger.info("chain dispatch: mean %.3f ms", record["dispatch_ms"]["mean"])


def _peers(
    server: Server,
    crew: Crew,
    config: Config,
    procrastinate_missing: str | None,
    recorder: _Recorder,
) -> None:
    peers.pgbench_init(server.pgbench_url)
    if procrastinate_missing is None:
        peers.procrastinate_setup(server.peer_url)
    for rep in range(config.repetitions):
        for clients in config.pgbench_clients:
            record = peers.measure_pgbench(
                server.pgbench_url, clients, config.pgbench_seconds, server.postmaster
            )
            recorder.add(record, rep=rep)
            logger.info("pgbench %d clients: %.0f TPS", clients, record["tps"])
        if procrastinate_missing is not None:
            continue
        for workers in config.workers:
            record = peers.measure_procrastinate(
                server.peer_url, crew, workers, config.procrastinate_jobs, server.postmaster
            )
            recorder.add(record, rep=rep)
            logger.info("procrastinate %d workers: %.0f jobs/s", workers, record["jobs_per_s"])


def _profiles(
    server: Server,
    crew: Crew,
    config: Config,
    layers: list[str],
    recorder: _Recorder,
    profiled: list[Workload],
    *,
    keep_history: bool = False,
) -> None:
    with _tracking_all(server.url), tempfile.TemporaryDirectory() as tmp:
        for workload in profiled:
            for layer in layers:
                raw = Path(tmp) / f"{workload.name}-{layer}.txt"
                # py-spy samples member 0, one of the PROFILE_WORKERS processes
                with pyprofile.sampling(crew.pids[0], raw) if layer == "worker" else nullcontext():
                    record = measure_drain(
                        server, crew, config, workload, layer=layer, workers=PROFILE_WORKERS,
                        keep_history=keep_history, top=12, wal_by_type=True,
                    )  # fmt: skip
                record["kind"] = "profile"
                record["python"] = pyprofile.summarize(raw)
                recorder.add(record, rep=0)
                logger.info("profiled %s %s", workload.name, layer)


@contextmanager
def _tracking_all(url: str) -> Iterator[None]:
    """``pg_stat_statements.track = all`` for the sessions opened inside the block.

    Setting it needs a superuser; without one the profiles show top-level statements only.
    """
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            dbstats.set_track(conn, "all")
    except psycopg.Error as exc:
        logger.warning("profiles: top-level statements only (%s)", str(exc).strip())
        yield
        return
    try:
        yield
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            dbstats.set_track(conn, "top")


def _growth(
    server: Server, crew: Crew, config: Config, layers: list[str], recorder: _Recorder
) -> None:
    """Pairs of drains, one on empty tables and one on a database holding the history.

    The two drains of a pair run back to back, so a shared machine's load changes hit
    both sides of the ratio alike.
    """
    grown_server = _grown_database(server)
    seed = recorder.add(seed_history(grown_server.url, config.growth_tasks))
    logger.info(
        "growth: %d finished tasks inserted in %.1f s", seed["tasks"], seed["total_seconds"]
    )
    base = workloads(config)[0]
    empty = Workload("growth_empty", base.flow, base.runs, base.tasks, base.leaf)
    grown = Workload("growth", base.flow, base.runs, base.tasks, base.leaf)
    for rep in range(config.repetitions):
        for layer in layers:
            for workers in config.workers:
                for target, workload in ((server, empty), (grown_server, grown)):
                    record = measure_drain(
                        target, crew, config, workload, layer=layer, workers=workers,
                        keep_history=workload is grown,
                    )  # fmt: skip
                    _log_drain(recorder.add(record, rep=rep))
    if grown_server.stat_statements:
        _profiles(grown_server, crew, config, layers, recorder, [grown], keep_history=True)


def _grown_database(server: Server) -> Server:
    """A second benchmark database (schema, flows, extensions) for the history."""
    url = server.create_database(f"{conninfo_to_dict(server.url)['dbname']}_grown")
    deploy(url)
    return dataclasses.replace(
        server,
        url=url,
        stat_statements=server.stat_statements and install_extension(url, "pg_stat_statements"),
        walinspect=server.walinspect and install_extension(url, "pg_walinspect"),
    )


def _log_drain(record: dict[str, Any]) -> None:
    logger.info(
        "%s %s %d workers (rep %d): %.0f tasks/s in %.2f s",
        record["workload"], record["layer"], record["workers"], record["rep"],
        record["tasks_per_s"], record["seconds"],
    )  # fmt: skip
