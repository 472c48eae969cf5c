"""``python -m benchmarks.schema_ab``: the SQL core of two schema versions, interleaved.

Drains the same workload with one SQL-core loop (``claim_tasks`` of 32, then one
``complete_tasks``) on a database installed with the migrations up to ``--old`` and on one
with every packaged migration, alternating old, new, new, old ... so that a machine whose
speed drifts favours neither. Prints every repetition's tasks/s and the medians. Commits
are asynchronous in the drainer's session, so the figure is the functions' cost, not the
disk's. Where the server runs on this machine, each side's backend CPU time per task is
printed too: a busy machine disturbs it less than tasks/s. The server is the test server
(``PGFLOW_TEST_DATABASE_URL``, else embedded).

Example: ``python -m benchmarks.schema_ab --steps 10 --runs 150 --pairs 4``.

``--without-index NAME`` compares the packaged schema with itself minus one index (the
"old" side drops it): what maintaining that index costs per task (e.g.
``--without-index step_tasks_finished``, the finished-task index of ``pgflow stats``). WAL
bytes per task are printed too.

``--old-sql FILE`` compares the packaged schema with itself plus a SQL file on the "old"
side, e.g. a function rewritten without one feature, to price that feature.

``--no-clock-hook`` compares the packaged schema with itself minus the test clock hook: the
"old" side gets every function and column default rewritten from ``pgflow._now()`` to
``now()`` (the cost of the hook, docs/testing.md).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
import uuid
from pathlib import Path
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


def strip_clock_hook(conn: psycopg.Connection[Any]) -> int:
    """Make every pgflow function and column default call now() instead of pgflow._now()."""
    functions = conn.execute(
        "select pg_get_functiondef(p.oid) from pg_proc p "
        "where p.pronamespace = 'pgflow'::regnamespace and p.proname <> '_now' "
        "and p.prosrc like '%pgflow._now()%'"
    ).fetchall()
    for (definition,) in functions:
        conn.execute(definition.replace("pgflow._now()", "now()").encode())
    defaults = conn.execute(
        "select format('alter table %s alter column %I set default now()', "
        "d.adrelid::regclass, a.attname) from pg_attrdef d "
        "join pg_attribute a on a.attrelid = d.adrelid and a.attnum = d.adnum "
        "where pg_get_expr(d.adbin, d.adrelid) like '%_now()%'"
    ).fetchall()
    for (statement,) in defaults:
        conn.execute(statement.encode())
    return len(functions) + len(defaults)


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


def backend_cpu(conn: psycopg.Connection[Any]) -> float | None:
    """CPU seconds the connection's backend has used so far, when the server runs on this
    machine and /proc shows it (None otherwise). Less disturbed by a busy machine than
    wall-clock time."""
    row = conn.execute("select pg_backend_pid()").fetchone()
    try:
        stat = Path(f"/proc/{row[0] if row else 0}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--old", type=int, default=1, help="migrations of the old schema")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--runs", type=int, default=150)
    parser.add_argument("--pairs", type=int, default=4, help="old/new/new/old rounds")
    parser.add_argument(
        "--no-clock-hook",
        action="store_true",
        help="old = every migration, with pgflow._now() rewritten to now() (ignores --old)",
    )
    parser.add_argument(
        "--without-index", metavar="NAME", help="old = every migration, minus this pgflow index"
    )
    parser.add_argument(
        "--old-sql",
        metavar="FILE",
        type=Path,
        help="old = every migration, then this SQL file (e.g. a function without a feature)",
    )
    args = parser.parse_args()
    same = args.no_clock_hook or args.without_index or args.old_sql
    old = migrations() if same else migrations()[: args.old]
    schemas = {"old": old, "new": migrations()}
    figures: dict[str, list[float]] = {"old": [], "new": []}
    cpu: dict[str, list[float]] = {"old": [], "new": []}
    wal: dict[str, list[float]] = {"old": [], "new": []}
    with start_server() as server:
        factory = DatabaseFactory(server)
        try:
            for name in ["old", "new", "new", "old"] * args.pairs:
                url = factory.create(schema=False)
                with psycopg.connect(url, autocommit=True) as conn:
                    SchemaManager(conn, schemas[name]).install()
                    if name == "old" and args.no_clock_hook:
                        strip_clock_hook(conn)
                    if name == "old" and args.without_index:
                        conn.execute(f"drop index pgflow.{args.without_index}".encode())
                    if name == "old" and args.old_sql:
                        conn.execute(args.old_sql.read_text(encoding="utf-8").encode())
                    prepare(conn, args.steps, args.runs)
                    lsn = conn.execute("select pg_current_wal_lsn()").fetchone()
                    before = backend_cpu(conn)
                    figures[name].append(drain(conn))
                    after = backend_cpu(conn)
                    written = conn.execute(
                        "select pg_wal_lsn_diff(pg_current_wal_lsn(), %s)", lsn
                    ).fetchone()
                    wal[name].append(float(written[0]) / (args.steps * args.runs) if written else 0)
                    if before is not None and after is not None:
                        cpu[name].append((after - before) / (args.steps * args.runs) * 1e6)
                factory.drop(url)
        finally:
            factory.close()
    for name, values in figures.items():
        last = schemas[name][-1].filename
        if name == "old" and args.no_clock_hook:
            last += " without the clock hook"
        if name == "old" and args.without_index:
            last += f" without {args.without_index}"
        if name == "old" and args.old_sql:
            last += f" + {args.old_sql.name}"
        print(
            f"{name} ({last}): median {statistics.median(values):,.0f} tasks/s "
            f"of {sorted(round(v) for v in values)}"
        )
        if cpu[name]:
            print(
                f"  backend CPU per task: median {statistics.median(cpu[name]):,.0f} us "
                f"of {sorted(round(v) for v in cpu[name])}"
            )
        print(f"  WAL per task: median {statistics.median(wal[name]):,.0f} bytes")


if __name__ == "__main__":
    main()
