"""``python -m benchmarks.blobs``: large values by reference, measured (docs/large-values.md).

* ``chain``: a 100 MB value (``--mb``) through a 3-step chain (``make`` returns it, ``pass``
  receives and returns it, ``size`` receives it) with one real ``pgflow.Worker`` in a
  subprocess: the run's time, the worker's peak RSS (beside an idle worker's, the same
  chain with a 1 kB value) and the WAL written (``pg_current_wal_lsn`` before and after).
* ``maps``: one run with a root map over ``--elements`` (1,000,000) elements, then a step
  returning an array of as many, mapped in turn: tasks/s of each map, drained by
  ``--drainers`` SQL-core loops (``claim_tasks`` of 100, one ``complete_tasks``), and how
  long splitting each array took.
* ``hot`` (with ``--baseline DIR``): small values, old against new, interleaved: the SQL-core
  loop on one-step runs, on a database whose functions are replaced by the SQL files in DIR
  (the same functions as they were, e.g. ``git show REV:pgflow/sql/schema/F > DIR/F``)
  and on the current one; and a real Worker with and without fetching and storing values
  by reference (the runner as it was: no ``TaskValues``).

The server is the test server (``PGFLOW_TEST_DATABASE_URL``, else a private embedded one),
or ``--database-url``'s. Example: ``python -m benchmarks.blobs --only chain maps``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from pgflow import Flow, Worker
from pgflow.deploy import deploy_flows
from pgflow.testing.databases import DatabaseFactory, DatabaseServer, start_server

CHAIN = Flow("bench_blob_chain", max_attempts=1, timeout=600)


@CHAIN.step()
def make(input: dict[str, Any]) -> str:
    return "x" * int(input["bytes"])


@CHAIN.step("pass", depends_on=[make])
def pass_on(make: str) -> str:
    return make[:-1] + "y"  # a new value of the same size, stored again


@CHAIN.step(depends_on=["pass"])
def size(**values: str) -> int:
    return len(values["pass"])


def serve_chain(url: str) -> None:
    """The subprocess: serve the chain until idle, then print this process's peak RSS."""
    Worker(CHAIN, url, concurrency=1, poll_interval=0.2).run(until_idle=True)
    print(json.dumps({"peak_rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))


def run_chain(url: str, size_bytes: int) -> dict[str, float]:
    """One run of the chain with a value of ``size_bytes``, served by a fresh worker."""
    with psycopg.connect(url, autocommit=True) as conn:
        lsn = conn.execute("select pg_current_wal_lsn()").fetchone()
        row = conn.execute(
            "select run_id from pgflow.start_flow(%s, %s)",
            [CHAIN.slug, Jsonb({"bytes": size_bytes})],
        ).fetchone()
        assert lsn is not None and row is not None
        began = time.perf_counter()
        out = subprocess.run(
            [sys.executable, "-m", "benchmarks.blobs", "--serve-chain", url],
            capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
        wall = time.perf_counter() - began
        status, seconds, output = conn.execute(
            "select status, extract(epoch from finished_at - started_at)::float8, output "
            "from pgflow.runs where run_id = %s",
            row,
        ).fetchone() or (None, None, None)
        wal = conn.execute("select pg_wal_lsn_diff(pg_current_wal_lsn(), %s)", lsn).fetchone()
    assert status == "completed" and output == {"size": size_bytes}, (status, output)
    rss = json.loads(out.strip().splitlines()[-1])["peak_rss_kib"] / 1024
    return {"run_s": float(seconds), "wall_s": wall, "peak_rss_mib": rss,
            "wal_mib": float(wal[0]) / 2**20 if wal else 0.0}  # fmt: skip


def bench_chain(url: str, mb: int) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        deploy_flows(conn, [CHAIN], dev=True)
        conn.execute("select pgflow.set_setting('max_payload_bytes', 268435455)")
    idle = run_chain(url, 1000)
    big = run_chain(url, mb * 1_000_000 - 2)  # the JSON string: exactly mb MB
    print(f"chain, {mb} MB value through 3 steps (make -> pass -> size), one Worker:")
    print(f"  run {big['run_s']:.2f} s (worker process {big['wall_s']:.2f} s incl. start-up)")
    print(f"  worker peak RSS {big['peak_rss_mib']:.0f} MiB "
          f"(the same chain with a 1 kB value: {idle['peak_rss_mib']:.0f} MiB)")  # fmt: skip
    print(f"  WAL {big['wal_mib']:.0f} MiB (1 kB value: {idle['wal_mib']:.2f} MiB); "
          f"two {mb} MB values stored")  # fmt: skip


MAPS = "bench_blob_maps"


def define_maps(conn: psycopg.Connection[Any]) -> None:
    conn.execute(f"select pgflow.delete_flow_and_data('{MAPS}')")
    conn.execute(f"select pgflow.create_flow('{MAPS}', max_attempts => 1)")
    conn.execute(f"select pgflow.add_step('{MAPS}', 'root_each', step_type => 'map')")
    conn.execute(f"select pgflow.add_step('{MAPS}', 'make', array['root_each'])")
    conn.execute(f"select pgflow.add_step('{MAPS}', 'dep_each', array['make'], step_type => 'map')")


def drain(url: str, elements: int, stop: threading.Event, timings: dict[str, float]) -> None:
    """A SQL-core loop: claim 100, complete them; ``make`` returns the array to map (its
    completion splits it: ``timings["split"]``)."""
    claim = "select run_id, step_slug, task_index, attempt from pgflow.claim_tasks(%s, %s, 100)"
    complete = (
        "select count(*) from pgflow.complete_tasks(%s::uuid[], %s::text[], %s::int[], "
        "%s::jsonb[], %s::int[])"
    )
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("set synchronous_commit = off")
        worker = uuid.uuid4()
        while not stop.is_set():
            rows = conn.execute(claim, ([MAPS], worker)).fetchall()
            if not rows:
                time.sleep(0.01)
                continue
            outputs = [Jsonb(list(range(elements)) if r[1] == "make" else 1) for r in rows]
            columns = [[r[i] for r in rows] for i in range(4)]
            began = time.perf_counter()
            conn.execute(complete, [columns[0], columns[1], columns[2], outputs, columns[3]])
            if "make" in columns[1]:
                timings["split"] = time.perf_counter() - began


def bench_maps(url: str, elements: int, drainers: int) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        define_maps(conn)
        began = time.perf_counter()
        row = conn.execute(
            "select run_id from pgflow.start_flow(%s, %s)", [MAPS, Jsonb(list(range(elements)))]
        ).fetchone()
        started = time.perf_counter() - began
        assert row is not None
        stop, timings = threading.Event(), {"split": 0.0}
        threads = [
            threading.Thread(target=drain, args=(url, elements, stop, timings))
            for _ in range(drainers)
        ]
        for thread in threads:
            thread.start()
        try:
            while conn.execute(
                "select status from pgflow.runs where run_id = %s", row
            ).fetchone() != ("completed",):
                time.sleep(0.5)
        finally:
            stop.set()
            for thread in threads:
                thread.join()
        steps = dict(conn.execute(
            "select step_slug, extract(epoch from completed_at - started_at)::float8 "
            "from pgflow.step_states where run_id = %s", row).fetchall())  # fmt: skip
        shipped = conn.execute(
            "select count(*) filter (where t.input is not null), max(pg_column_size(t.input)) "
            "from pgflow.step_tasks t where t.run_id = %s and t.step_slug = 'root_each'", row
        ).fetchone()  # fmt: skip
    print(f"maps, {elements:,} elements each, {drainers} SQL-core loops (claim 100):")
    print(f"  root map (over the run input, stored by reference): "
          f"{elements / steps['root_each']:,.0f} tasks/s; start_flow incl. the split "
          f"{started:.2f} s")  # fmt: skip
    print(
        f"  map over a step's output (stored by reference):     "
        f"{elements / steps['dep_each']:,.0f} tasks/s; completing the step that returns the "
        f"array, incl. storing and splitting it, {timings['split']:.2f} s"
    )
    print(f"  each root-map task carries its element only ({shipped[1] if shipped else 0} bytes "
          f"at most), never the run input")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.blobs", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--database-url", help="a server to create the databases on")
    parser.add_argument(
        "--only", nargs="+", choices=["chain", "maps", "hot"], default=["chain", "maps"]
    )
    parser.add_argument("--mb", type=int, default=100)
    parser.add_argument("--elements", type=int, default=1_000_000)
    parser.add_argument("--drainers", type=int, default=2)
    parser.add_argument("--baseline", type=Path, help="old SQL function files (hot path A/B)")
    parser.add_argument("--pairs", type=int, default=3, help="old/new/new/old rounds (hot)")
    parser.add_argument("--serve-chain", metavar="URL", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_chain:
        serve_chain(args.serve_chain)
        return
    from benchmarks.blobs_hot import bench_hot

    with _server(args.database_url) as server:
        factory = DatabaseFactory(server)
        try:
            for name in args.only:
                if name == "hot":
                    asyncio.run(bench_hot(factory, args.baseline, args.pairs))
                    continue
                url = factory.create()
                try:
                    if name == "chain":
                        bench_chain(url, args.mb)
                    else:
                        bench_maps(url, args.elements, args.drainers)
                finally:
                    factory.drop(url)
        finally:
            factory.close()


def _server(url: str | None) -> Any:
    if url is None:
        return start_server()
    from contextlib import nullcontext

    return nullcontext(DatabaseServer(url, "env"))


if __name__ == "__main__":
    main()
