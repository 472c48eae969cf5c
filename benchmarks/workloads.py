"""Throughput workloads: runs started up front, then drained by 1, 4 or 8 workers.

One measurement (:func:`measure_drain`):

1. empty the runtime tables (not for growth, whose history must stay);
2. snapshot counters, start every run and time it (``start`` figures and start cost):
   on as many connections as there are workers, each starting its share in one
   statement, so starting uses the machine as the drain does;
3. ``CHECKPOINT`` again, so every drain starts with the same WAL state (full-page images
   of the pages it touches first are part of its cost, as they are in steady state);
4. snapshot counters, reset ``pg_stat_statements``, open the gate, drain;
5. after the workers disconnected, snapshot again and check that every run completed.

Two rates per drain. ``tasks_per_s`` is the drain's: the tasks over the drain's seconds.
It leaves out what starting the runs cost, which is not the same for every workload: an
independent run's one task is created by ``start_flow``, before the clock starts, while a
chain's drain itself creates 9 of its 10 tasks (each completion starts the next step). So
``tasks_per_s_with_start`` (the tasks over the start's and the drain's seconds together,
both with the same parallelism) is the rate to compare workloads of different shapes with:
every task is created and run inside the time it counts.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from benchmarks import dbstats, pgflow_ts
from benchmarks.config import Config
from benchmarks.cpu import server_cpu
from benchmarks.crew import Crew
from benchmarks.flows import CHAIN_LENGTH, DIAMOND_WIDTH
from benchmarks.server import Server
from benchmarks.warmup import SLUG

__all__ = ["Workload", "measure_drain", "reset_runtime", "workloads"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Workload:
    """Runs of one flow, started up front.

    Attributes:
        name: ``independent``, ``chain``, ``diamond``, ``fanout`` (or ``growth``).
        flow: the flow's slug.
        runs: how many runs.
        tasks: how many tasks the runs make in all.
        leaf: the leaf step whose key every completed run's output must have.
        input: every run's input.
    """

    name: str
    flow: str
    runs: int
    tasks: int
    leaf: str
    input: dict[str, Any] = field(default_factory=dict)


def workloads(config: Config) -> list[Workload]:
    """The throughput workloads of a run, in order."""
    n = config.fanout_elements
    return [
        Workload(
            "independent", "bench_single", config.independent_runs, config.independent_runs, "task"
        ),
        Workload(
            "chain", "bench_chain", config.chain_runs, config.chain_runs * CHAIN_LENGTH, "s09"
        ),
        Workload(
            "diamond",
            "bench_diamond",
            config.diamond_runs,
            config.diamond_runs * (DIAMOND_WIDTH + 2),
            "join",
        ),
        Workload("fanout", "bench_fanout", 1, n + 2, "total", {"n": n}),
    ]


def reset_runtime(url: str) -> None:
    """Empty the runtime tables (runs, step states, tasks, workers)."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("truncate pgflow.runs, pgflow.step_states, pgflow.step_tasks, pgflow.workers")


def measure_drain(
    server: Server,
    crew: Crew,
    config: Config,
    workload: Workload,
    *,
    layer: str,
    workers: int,
    keep_history: bool = False,
    top: int = 6,
    wal_by_type: bool = False,
    during: Callable[[], AbstractContextManager[Any]] | None = None,
) -> dict[str, Any]:
    """Start a workload's runs, drain them with ``workers`` processes, return the record.

    ``layer`` ``pgflow`` drains pgflow 0.8.1's database (``server.url`` is that one);
    ``during`` is entered around the drain alone (e.g. a concurrent writer).
    """
    if not keep_history:
        (pgflow_ts.reset if layer == "pgflow" else reset_runtime)(server.url)
    with psycopg.connect(server.url, autocommit=True) as conn:
        initial = dbstats.snapshot(conn)
        start_cpu = server_cpu(server.postmaster)
        start_seconds = _start_runs(server.url, workload, workers)
        start_cpu_s = _minus(server_cpu(server.postmaster), start_cpu)
        started = dbstats.snapshot(conn)
        args = _drain_args(server, config, workload, layer)
        _start_warmup(server.url, workers * args["warmup"])
        mark: dict[str, Any] = {}

        def before_gate() -> None:  # the members are set up and warm: the drain starts
            _checkpoint(conn)
            mark["counters"] = dbstats.snapshot(conn)
            mark["server_cpu"] = server_cpu(server.postmaster)
            mark["lsn"] = dbstats.wal_lsn(conn)
            if server.stat_statements:
                dbstats.reset_statements(conn)

        with during() if during else nullcontext():
            result = crew.run(workers, f"{layer}_drain", args, before_gate=before_gate)
        before, server_before, lsn = mark["counters"], mark["server_cpu"], mark["lsn"]
        ended = max(r["ended"] for r in result.results if r.get("ended") is not None)
        seconds = ended - result.started
        dbstats.wait_until_alone(conn)
        server_after = server_cpu(server.postmaster)
        counters = dbstats.delta(before, dbstats.snapshot(conn))
        end_lsn = dbstats.wal_lsn(conn)
        start_counters = dbstats.delta(initial, started)
        statements = dbstats.top_statements(conn, top) if server.stat_statements else []
        unfinished = _unfinished_runs(conn, workload, layer)
        wal = dbstats.wal_breakdown(conn, lsn, end_lsn) if wal_by_type and server.walinspect else []
    if unfinished:
        raise RuntimeError(
            f"{workload.name}/{layer}/{workers}: {unfinished} runs not completed with the "
            f"{workload.leaf!r} key in their output (or a map output of the wrong length)"
        )
    return {
        "kind": "drain",
        "workload": workload.name,
        "layer": layer,
        "workers": workers,
        "runs": workload.runs,
        "tasks": workload.tasks,
        "seconds": seconds,
        "tasks_per_s": workload.tasks / seconds,
        "start_seconds": start_seconds,
        "runs_started_per_s": workload.runs / start_seconds,
        "tasks_per_s_with_start": workload.tasks / (start_seconds + seconds),
        "counters": counters,
        "cost_per_task": {
            **dbstats.cost_per(counters, workload.tasks),
            **dbstats.cpu_per(result.results, server_before, server_after, workload.tasks),
        },
        "start_cost_per_task": {
            **dbstats.cost_per(start_counters, workload.tasks),
            **(
                {} if start_cpu_s is None else {"server_cpu_us": start_cpu_s / workload.tasks * 1e6}
            ),
        },
        "members": result.results,
        "statements": statements,
        "wal_by_type": wal,
    }


def _drain_args(server: Server, config: Config, workload: Workload, layer: str) -> dict[str, Any]:
    edge = layer in ("sqlapi", "pgflow")
    batch = config.core_batch if layer == "core" else config.worker_batch
    return {
        "url": server.url,
        "flows": [workload.flow],
        "batch": config.edge_batch if edge else batch,
        "concurrency": config.edge_concurrency if edge else config.worker_concurrency,
        "connections": config.edge_connections,
        "expected": workload.tasks,
        "warmup": _WARM_CONNECTIONS.get(layer, config.edge_connections),
    }


_WARM_CONNECTIONS = {"core": 1, "worker": 4}
"""Connections each member warms (:mod:`benchmarks.warmup`): the SQL-core loop's one, about
what a Worker's pool uses at once (claims, reports, cancellation checks), and for the
Edge-shaped loops their whole pool (``edge_connections``)."""


def _start_warmup(url: str, runs: int) -> None:
    """Start the warm-up runs the members work before the gate (two tasks each)."""
    with psycopg.connect(url, autocommit=True) as conn:
        _start_share(SLUG, {}, conn, runs)


def _start_runs(url: str, workload: Workload, parallel: int) -> float:
    """Start the runs on up to ``parallel`` connections at once; the seconds it took."""
    base, extra = divmod(workload.runs, parallel)
    shares = [base + 1] * extra + [base] * (parallel - extra if base else 0)
    conns = [psycopg.connect(url, autocommit=True) for _ in shares]
    try:
        with ThreadPoolExecutor(len(conns)) as pool:
            started = time.monotonic()
            list(pool.map(partial(_start_share, workload.flow, workload.input), conns, shares))
            return time.monotonic() - started
    finally:
        for conn in conns:
            conn.close()


def _start_share(flow: str, input: Any, conn: psycopg.Connection[Any], runs: int) -> None:
    conn.execute(
        "select count(*) from (select pgflow.start_flow(%s, %s) from generate_series(1, %s)) s",
        [flow, Jsonb(input), runs],
    )


def _wal_by_type(conn: psycopg.Connection[Any], start: str, end: str) -> list[dict[str, Any]]:
    try:
        return dbstats.wal_breakdown(conn, start, end)
    except psycopg.Error as exc:  # pg_walinspect needs superuser or pg_read_server_files
        logger.warning("WAL by record type not available: %s", str(exc).strip())
        return []


def _minus(after: float | None, before: float | None) -> float | None:
    return None if after is None or before is None else after - before


def _checkpoint(conn: psycopg.Connection[Any]) -> None:
    try:
        conn.execute("checkpoint")
    except psycopg.errors.InsufficientPrivilege:
        logger.info("no CHECKPOINT privilege: WAL figures include checkpoint timing noise")


def _unfinished_runs(conn: psycopg.Connection[Any], workload: Workload, layer: str) -> int:
    """Runs not completed, or completed without their leaf's output; a map of the wrong size."""
    if layer == "pgflow":
        return pgflow_ts.unfinished(conn, workload.flow, workload.leaf, workload.input.get("n"))
    row = conn.execute(
        "select count(*) from pgflow.runs"
        " where flow_slug = %s and (status <> 'completed' or not output ? %s)",
        [workload.flow, workload.leaf],
    ).fetchone()
    bad = int(row[0]) if row else 0
    if "n" in workload.input:
        row = conn.execute(
            "select count(*) from pgflow.step_states where flow_slug = %s and step_slug = 'each'"
            " and jsonb_array_length(output) <> %s",
            [workload.flow, workload.input["n"]],
        ).fetchone()
        bad += int(row[0]) if row else 0
    return bad
