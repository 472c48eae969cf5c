"""``python -m benchmarks.partitions``: dropping a month of history against deleting it.

Puts ``--runs`` finished one-step runs (a run, a step state and a task each) into last
month's history partition, then removes them twice on a fresh copy each time:

1. ``pgflow.drop_history_partitions('1 day')``: the month goes in one step (what ``pgflow
   prune`` and retention do first);
2. ``pgflow.prune_batch('1 day', 'bench_single', max_runs => --batch)`` in a loop, one
   transaction per batch: how pruning worked run by run before the history was partitioned
   (the flow filter keeps the month from being dropped).

Prints the seconds each took and the runs per second. The server is the test server
(``PGFLOW_TEST_DATABASE_URL``, else embedded).

Example: ``python -m benchmarks.partitions --runs 1000000``.
"""

from __future__ import annotations

import argparse
import json
import threading
import time
import uuid
from typing import Any

import psycopg

from benchmarks.flows import deploy
from benchmarks.growth import seed_history
from pgflow.testing import DatabaseFactory, start_server

_ID = uuid.uuid4()  # a run the reader looks for (none: the read still locks every partition)
_LAST_MONTH = "select pgflow._add_history_partition(now() - interval '1 month')"
# from the first day of last month on, so that every seeded run starts in that month
_AGO = (
    "select (now() - (date_trunc('month', now(), 'UTC') - interval '1 month'"
    " + interval '1 day'))::text"
)


def _seed(url: str, runs: int) -> dict[str, Any]:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(_LAST_MONTH)
        row = conn.execute(_AGO).fetchone()
        assert row is not None
    return seed_history(url, runs, ago=str(row[0]))


def _drop(url: str) -> tuple[float, int, float]:
    """Drop the month while another connection reads a task again and again: the seconds
    the drop took, the runs it dropped, and the longest the reader waited (the pause)."""
    done = threading.Event()
    longest = 0.0

    def probe() -> None:
        nonlocal longest
        with psycopg.connect(url, autocommit=True) as conn:
            while not done.is_set():
                began = time.perf_counter()
                conn.execute("select count(*) from pgflow.step_tasks where run_id = %s", [_ID])
                longest = max(longest, time.perf_counter() - began)

    reader = threading.Thread(target=probe)
    reader.start()
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            began = time.perf_counter()
            rows = conn.execute(
                "select runs from pgflow.drop_history_partitions('1 day')"
            ).fetchall()
            seconds = time.perf_counter() - began
    finally:
        done.set()
        reader.join()
    return seconds, sum(int(r[0]) for r in rows), longest


def _prune(url: str, batch: int) -> tuple[float, int]:
    total = 0
    with psycopg.connect(url, autocommit=True) as conn:
        began = time.perf_counter()
        while True:
            row = conn.execute(
                "select coalesce(sum(runs), 0) from pgflow.prune_batch('1 day', 'bench_single',"
                " max_runs => %s)",
                [batch],
            ).fetchone()
            done = int(row[0]) if row else 0
            total += done
            if done < batch:
                return time.perf_counter() - began, total


def main() -> None:
    """Parse the options, measure both ways on fresh databases and print the figures."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.partitions", description=__doc__)
    parser.add_argument("--runs", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=1000, help="runs per prune_batch call")
    parser.add_argument("--json", metavar="FILE", help="also write the figures here")
    args = parser.parse_args()
    figures: dict[str, Any] = {"runs": args.runs, "batch": args.batch}
    with start_server() as server:
        factory = DatabaseFactory(server)
        for way in ("drop", "prune"):
            url = factory.create(schema=False)
            try:
                deploy(url)
                seed = _seed(url, args.runs)
                figures[f"{way}_tables_bytes"] = seed["tables_bytes"]
                if way == "drop":
                    seconds, runs, figures["drop_pause_seconds"] = _drop(url)
                else:
                    seconds, runs = _prune(url, args.batch)
                figures[f"{way}_seconds"] = seconds
                figures[f"{way}_runs"] = runs
            finally:
                factory.drop(url)
    print(
        f"{args.runs} finished runs of last month ({figures['drop_tables_bytes'] / 2**20:.0f} MiB"
        f" of runs, step states and tasks): drop_history_partitions removed"
        f" {figures['drop_runs']} in {figures['drop_seconds']:.2f} s (a reader of the tables waited"
        f" at most {figures['drop_pause_seconds']:.2f} s); prune_batch in batches of"
        f" {args.batch} removed {figures['prune_runs']} in {figures['prune_seconds']:.1f} s"
        f" ({figures['prune_runs'] / figures['prune_seconds']:,.0f} runs/s)"
    )
    if args.json:
        with open(args.json, "w", encoding="utf-8") as out:
            json.dump(figures, out, indent=2)


if __name__ == "__main__":
    main()
