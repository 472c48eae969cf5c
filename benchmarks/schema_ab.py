"""``python -m benchmarks.schema_ab``: the SQL core of two schema versions, interleaved.

Drains the same workload with one SQL-core loop (``claim_tasks`` of 32, then one
``complete_tasks``) on a database installed with the migrations up to ``--old`` and on one
with every packaged migration, alternating old, new, new, old ... so that a machine whose
speed drifts favours neither. Prints every repetition's tasks/s and the medians. Commits
are asynchronous in the drainer's session, so the figure is the functions' cost, not the
disk's. The server is the test server (``PGFLOW_TEST_DATABASE_URL``, else embedded).

Example: ``python -m benchmarks.schema_ab --steps 10 --runs 150 --pairs 4``.
"""

from __future__ import annotations

import argparse
import statistics
import time
import uuid
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from pgflow.db.schema import SchemaManager
from pgflow.migrations import migrations
from pgflow.testing.databases import DatabaseFactory, start_server


def prepare(conn: psycopg.Connection[Any], steps: int, runs: int) -> None:
    """A chain of ``steps`` steps (1: independent runs) and ``runs`` runs started."""
    conn.execute("select pgflow.create_flow('ab')")
    for i in range(steps):
        deps = [f"s{i - 1}"] if i else []
        conn.execute("select pgflow.add_step('ab', %s, %s::text[])", (f"s{i}", deps))
    for _ in range(runs):
        conn.execute("select pgflow.start_flow('ab', '{}'::jsonb)")


def drain(conn: psycopg.Connection[Any]) -> float:
    """Claim and complete until nothing is left; tasks per second."""
    conn.execute("set synchronous_commit = off")
    worker, done, started = uuid.uuid4(), 0, time.perf_counter()
    claim = "select * from pgflow.claim_tasks(array['ab'], %s, 32)"
    complete = (
        "select count(*) from pgflow.complete_tasks(%s::uuid[], %s::text[], %s::int[], "
        "%s::jsonb[], %s::int[])"
    )
    while rows := conn.execute(claim, (worker,)).fetchall():
        columns = list(zip(*[(r[0], r[2], r[3], Jsonb(1), r[4]) for r in rows], strict=True))
        conn.execute(complete, [list(c) for c in columns])
        done += len(rows)
    return done / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--old", type=int, default=1, help="migrations of the old schema")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--runs", type=int, default=150)
    parser.add_argument("--pairs", type=int, default=4, help="old/new/new/old rounds")
    args = parser.parse_args()
    schemas = {"old": migrations()[: args.old], "new": migrations()}
    figures: dict[str, list[float]] = {"old": [], "new": []}
    with start_server() as server:
        factory = DatabaseFactory(server)
        try:
            for name in ["old", "new", "new", "old"] * args.pairs:
                url = factory.create(schema=False)
                with psycopg.connect(url, autocommit=True) as conn:
                    SchemaManager(conn, schemas[name]).install()
                    prepare(conn, args.steps, args.runs)
                    figures[name].append(drain(conn))
                factory.drop(url)
        finally:
            factory.close()
    for name, values in figures.items():
        last = schemas[name][-1].filename
        print(
            f"{name} ({last}): median {statistics.median(values):,.0f} tasks/s "
            f"of {sorted(round(v) for v in values)}"
        )


if __name__ == "__main__":
    main()
