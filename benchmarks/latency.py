"""Latency on an idle system: one run at a time, one LISTEN-driven worker waiting for it.

- :func:`measure_run_latency`: a client LISTENs on the run's channel
  (``pgflow_run_<run_id>``, the run id chosen up front) and registers as its listener
  (``watch_run``: run events are notified only to registered listeners; neither is
  timed), calls ``start_flow`` and stops the
  clock when ``run:completed`` arrives. The worker is a crew member serving either layer.
  ``start`` is the part until ``start_flow`` returned. With the SQL-core worker the
  latency is also split into stages, from both processes' timestamps on the one
  system-wide monotonic clock.
- :func:`measure_dispatch`: chains run one at a time by one LISTEN-driven SQL-core worker,
  which times each step-to-step dispatch itself (see :func:`benchmarks.core_loop.dispatch`).

The first ``WARMUP`` samples of a repetition are dropped: they include compiling the
plpgsql functions in fresh sessions.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from benchmarks.config import Config
from benchmarks.crew import Crew
from benchmarks.numbers import summarize
from benchmarks.server import Server

__all__ = ["WARMUP", "measure_dispatch", "measure_run_latency"]

WARMUP = 3
_IDLE = 0.02  # seconds between samples, so each run meets an idle worker


def measure_run_latency(
    server: Server,
    crew: Crew,
    config: Config,
    *,
    layer: str,
    flow: str,
    samples: int,
) -> dict[str, Any]:
    """Time ``samples`` runs of ``flow``, one at a time, start → completion seen by a client."""
    args = {
        "url": server.url,
        "flows": [flow],
        "batch": config.core_batch if layer == "core" else config.worker_batch,
        "concurrency": config.worker_concurrency,
    }
    crew.start(1, f"{layer}_serve", args)
    client: list[tuple[float, float, float]] = []
    try:
        with psycopg.connect(server.url, autocommit=True) as conn:
            for _ in range(samples + WARMUP):
                client.append(_one_run(conn, flow))
                time.sleep(_IDLE)
    finally:
        crew.stop()
        served = crew.finish()[0]
    client = client[WARMUP:]
    record = {
        "kind": "latency",
        "layer": layer,
        "flow": flow,
        "total_ms": summarize([(end - began) * 1000 for began, _, end in client]),
        "start_ms": summarize([(started - began) * 1000 for began, started, _ in client]),
    }
    events = served.get("events", [])
    if flow == "bench_single" and len(events) == len(client) + WARMUP:
        record["stages_ms"] = _stages(client, events[WARMUP:])
    return record


def _stages(
    client: list[tuple[float, float, float]], worker: list[tuple[float, float, float]]
) -> dict[str, dict[str, float]]:
    """Where a one-step run's latency goes (one clock: CLOCK_MONOTONIC, system-wide)."""
    pairs = list(zip(client, worker, strict=True))
    stages = {
        "start_to_worker_woken": [w[0] - c[0] for c, w in pairs],
        "claim_round_trip": [w[1] - w[0] for c, w in pairs],
        # the client is notified by the same commit that answers the worker's call
        "claimed_to_client_notified": [c[2] - w[1] for c, w in pairs],
        "complete_round_trip": [w[2] - w[1] for c, w in pairs],
    }
    return {name: summarize([v * 1000 for v in values]) for name, values in stages.items()}


def _one_run(conn: psycopg.Connection[Any], flow: str) -> tuple[float, float, float]:
    run_id = uuid.uuid4()
    channel = sql.Identifier(f"pgflow_run_{run_id}")
    conn.execute(sql.SQL("listen {}").format(channel))
    listener = uuid.uuid4()
    conn.execute("select pgflow.watch_run(%s, %s)", [listener, run_id])
    began = time.monotonic()
    conn.execute("select pgflow.start_flow(%s, %s, %s)", [flow, Jsonb({}), run_id])
    started = time.monotonic()
    for notify in conn.notifies(timeout=10):
        event = json.loads(notify.payload).get("event")
        if event == "run:completed":
            break
        if event in ("run:failed", "run:cancelled"):
            raise RuntimeError(f"latency run {run_id} ended with {event}")
    else:
        raise TimeoutError(f"latency run {run_id} did not complete within 10 s")
    ended = time.monotonic()
    conn.execute("select pgflow.unwatch(%s)", [listener])
    conn.execute(sql.SQL("unlisten {}").format(channel))
    return began, started, ended


def measure_dispatch(server: Server, crew: Crew, runs: int) -> dict[str, Any]:
    """Step-to-step dispatch in ``runs`` chains on an idle system (SQL-core worker)."""
    result = crew.run(1, "core_dispatch", {"url": server.url, "runs": runs})
    samples = result.results[0]["samples"][WARMUP:]
    return {
        "kind": "dispatch",
        "layer": "core",
        "dispatch_ms": summarize([claimed * 1000 for _, claimed in samples]),
        "wake_ms": summarize([woke * 1000 for woke, _ in samples]),
    }
