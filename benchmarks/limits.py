"""``python -m benchmarks.limits``: a step concurrency limit under many real Workers.

Starts ``--runs`` runs of a one-step flow whose step has ``concurrency=--limit``, then
drains them with ``--workers`` ``pgflow.Worker`` processes (each with ``--concurrency``
handler slots, so the fleet has far more room than the limit allows). Each handler sleeps
``--hold`` seconds, like a call to a slow service. A monitor connection samples the number
of leased tasks of the step every millisecond or so. Prints the most seen at once (the
limit must never be exceeded), the throughput from the first lease to the last completion
(worker start-up excluded), and the ceiling the limit sets (limit / hold tasks/s). The
server is the test server (``PGFLOW_TEST_DATABASE_URL``, else embedded).

Example: ``python -m benchmarks.limits --workers 8 --limit 4 --runs 400 --hold 0.02``.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import threading
import time
from typing import Any

import psycopg

from pgflow import Flow
from pgflow.deploy import deploy_flows
from pgflow.testing.databases import DatabaseFactory, start_server

LEASED = "select count(*) from pgflow.step_tasks where flow_slug = 'limited' and status = 'started'"
FINISHED = "select count(*) from pgflow.runs where flow_slug = 'limited' and status <> 'started'"
# the drain as the database saw it: first lease to last completion (worker start-up excluded)
SPAN = (
    "select extract(epoch from max(completed_at) - min(started_at))::float8"
    " from pgflow.step_tasks where flow_slug = 'limited'"
)


def limited_flow(limit: int, hold: float) -> Flow:
    """A one-step flow whose step may run ``limit`` tasks at once, each ``hold`` seconds."""
    flow = Flow("limited")

    @flow.step(concurrency=limit)
    async def call(input: Any) -> int:
        await asyncio.sleep(hold)
        return 1

    return flow


def work(url: str, limit: int, hold: float, concurrency: int, stop: Any) -> None:
    """One worker process: a Worker until ``stop`` is set."""
    from pgflow import Worker

    worker = Worker([limited_flow(limit, hold)], url, concurrency=concurrency, poll_interval=0.05)

    async def run() -> None:
        task = asyncio.create_task(worker.run_async())
        while not stop.is_set():
            await asyncio.sleep(0.05)
        worker.stop()
        await task

    asyncio.run(run())


def measure(url: str, args: argparse.Namespace) -> dict[str, float]:
    """Drain the runs; the most leased at once, tasks/s and the ceiling."""
    flow = limited_flow(args.limit, args.hold)
    with psycopg.connect(url, autocommit=True) as conn:
        deploy_flows(conn, [flow])
        for _ in range(args.runs):
            conn.execute("select pgflow.start_flow('limited', '{}'::jsonb)")
    stop = multiprocessing.Event()
    most = 0
    samples = 0
    done = threading.Event()

    def monitor() -> None:
        nonlocal most, samples
        with psycopg.connect(url, autocommit=True) as conn:
            while not done.is_set():
                row = conn.execute(LEASED).fetchone()
                most = max(most, int(row[0]) if row else 0)
                samples += 1

    watcher = threading.Thread(target=monitor)
    watcher.start()
    procs = [
        multiprocessing.Process(
            target=work, args=(url, args.limit, args.hold, args.concurrency, stop)
        )
        for _ in range(args.workers)
    ]
    began = time.perf_counter()
    for proc in procs:
        proc.start()
    with psycopg.connect(url, autocommit=True) as conn:
        while True:
            row = conn.execute(FINISHED).fetchone()
            if row and row[0] >= args.runs:
                break
            time.sleep(0.01)
    elapsed = time.perf_counter() - began
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(SPAN).fetchone()
        span = float(row[0]) if row and row[0] else elapsed
    stop.set()
    for proc in procs:
        proc.join(30)
    done.set()
    watcher.join()
    return {
        "most_leased": most,
        "samples": samples,
        "tasks_per_s": args.runs / span,
        "ceiling_per_s": args.limit / args.hold,
        "seconds": span,
        "wall_seconds": elapsed,
    }


def main() -> None:
    """Parse the options, run once on a fresh database and print the figures."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.limits", description=__doc__)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--concurrency", type=int, default=8, help="handler slots per worker")
    parser.add_argument("--limit", type=int, default=4, help="the step's concurrency limit")
    parser.add_argument("--runs", type=int, default=400)
    parser.add_argument("--hold", type=float, default=0.02, help="seconds per handler")
    args = parser.parse_args()
    with start_server() as server:
        factory = DatabaseFactory(server)
        url = factory.create()
        try:
            figures = measure(url, args)
        finally:
            factory.drop(url)
    print(
        f"{args.workers} workers x {args.concurrency} slots, step concurrency={args.limit}, "
        f"{args.runs} tasks of {args.hold * 1000:.0f} ms: most leased at once "
        f"{figures['most_leased']:.0f} ({figures['samples']:.0f} samples), "
        f"{figures['tasks_per_s']:.1f} tasks/s ({args.runs} tasks from first lease to last "
        f"completion in {figures['seconds']:.2f} s; {figures['wall_seconds']:.2f} s with "
        "start-up) "
        f"(ceiling {figures['ceiling_per_s']:.0f}/s)"
    )


if __name__ == "__main__":
    main()
