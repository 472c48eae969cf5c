"""``python -m benchmarks.cold_backend``: what a fresh server connection's first batches cost.

Each server process compiles the PL/pgSQL functions it calls and plans their statements on
first use, and keeps both for its lifetime. So a connection's first claim and first report
cost more than the ones after. A long-lived worker pays this once, but a drain of a couple
of seconds pays it on every connection it opens within the timed window: the Worker's pool
uses about three per process, the SQL-core loop one.

For ``--connections`` fresh connections in turn, this times the first ``--batches`` rounds
of the SQL-core loop on the benchmark chain (``claim_tasks`` of ``--batch`` tasks, then one
``complete_tasks`` for them) and prints each round's time and the connection's server CPU
(read from ``/proc``: the server must run on this machine), then the median per round.
``--warm`` first runs a claim of no tasks on each connection (which plans the claim).

Example: ``python -m benchmarks.cold_backend --connections 5 --batches 4``.
"""

from __future__ import annotations

import argparse
import statistics
import time
import uuid

import psycopg

from benchmarks.core_loop import CLAIM, COMPLETE, complete_params
from benchmarks.flows import START_RUNS, deploy
from benchmarks.prepare_ab import backend_cpu
from benchmarks.server import open_server

FLOW = "bench_chain"


def rounds(url: str, batches: int, batch: int, warm: bool) -> tuple[list[float], float]:
    """One fresh connection's first rounds: (milliseconds per round, server CPU ms in all)."""
    with psycopg.connect(url, autocommit=True) as conn:
        pid, worker = conn.info.backend_pid, uuid.uuid4()
        cpu = backend_cpu(pid)
        times = []
        if warm:
            conn.execute(CLAIM, ([FLOW], worker, 0)).fetchall()
        for _ in range(batches):
            began = time.perf_counter()
            rows = conn.execute(CLAIM, ([FLOW], worker, batch)).fetchall()
            conn.execute(COMPLETE, complete_params(rows))
            times.append((time.perf_counter() - began) * 1000)
        return times, (backend_cpu(pid) - cpu) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=5, help="fresh connections")
    parser.add_argument("--batches", type=int, default=4, help="rounds per connection")
    parser.add_argument("--batch", type=int, default=32, help="tasks per claim")
    parser.add_argument("--warm", action="store_true", help="claim no tasks first")
    args = parser.parse_args()
    with open_server(None) as server:
        deploy(server.url)
        needed = args.connections * args.batches * args.batch
        with psycopg.connect(server.url, autocommit=True) as conn:
            conn.execute(START_RUNS, [FLOW, needed])
        rounds(server.url, 2, args.batch, False)  # the server's own first use
        each = []
        for i in range(args.connections):
            times, cpu = rounds(server.url, args.batches, args.batch, args.warm)
            each.append(times)
            shown = "  ".join(f"{t:6.1f}" for t in times)
            print(f"connection {i + 1}: ms per round {shown}   server CPU {cpu:5.0f} ms")
        medians = "  ".join(f"{statistics.median(c):6.1f}" for c in zip(*each, strict=True))
        print(f"median:       ms per round {medians}")


if __name__ == "__main__":
    main()
