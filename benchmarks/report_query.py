"""``python -m benchmarks.report_query``: the worker's completion query, A/B.

The worker stores a batch of completions with the named query ``worker_complete_tasks``,
which returns the reports the database refused (fenced), so that a result of a task
cancelled meanwhile is logged as discarded. Before, it returned only a count. This times
both, interleaved, on batches of ``--batch`` freshly claimed tasks of a one-step flow, on a
fresh embedded server (or ``PGFLOW_TEST_DATABASE_URL``), and prints the median and p90.
"""

from __future__ import annotations

import argparse
import statistics
import time
import uuid
from typing import Any, LiteralString

import psycopg

from pgflow import Flow
from pgflow._json import jsonb
from pgflow.deploy import deploy_flows
from pgflow.sql import query
from pgflow.testing.databases import DatabaseFactory, start_server

COUNT_ONLY: LiteralString = """
select count(*)::int as reported
from pgflow.complete_tasks(%(run_ids)s::uuid[], %(step_slugs)s::text[],
  %(task_indexes)s::int[], %(outputs)s::jsonb[], %(attempts)s::int[])
"""
CLAIM: LiteralString = (
    "select run_id, step_slug, task_index, attempt "
    "from pgflow.claim_tasks(array['report_ab'], %s, %s)"
)


def one_batch(conn: psycopg.Connection[Any], sql: LiteralString, size: int) -> float:
    """Start and claim ``size`` tasks, then time storing their completions with ``sql``."""
    for _ in range(size):
        conn.execute("select pgflow.start_flow('report_ab', '{}')")
    rows = conn.execute(CLAIM, [uuid.uuid4(), size]).fetchall()
    params = {
        "run_ids": [r[0] for r in rows],
        "step_slugs": [r[1] for r in rows],
        "task_indexes": [r[2] for r in rows],
        "attempts": [r[3] for r in rows],
        "outputs": [jsonb(1) for _ in rows],
    }
    started = time.perf_counter()
    conn.execute(sql, params).fetchall()
    return time.perf_counter() - started


def main() -> None:
    """Run the A/B and print one line per variant."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batches", type=int, default=400, help="batches in all (interleaved)")
    parser.add_argument("--batch", type=int, default=10, help="tasks per batch")
    args = parser.parse_args()
    flow = Flow("report_ab").step("only", lambda input: 1)
    variants: dict[str, LiteralString] = {
        "count only": COUNT_ONLY,
        "refused keys": query("worker_complete_tasks"),
    }
    times: dict[str, list[float]] = {name: [] for name in variants}
    with start_server() as server:
        factory = DatabaseFactory(server)
        url = factory.create()
        with psycopg.connect(url, autocommit=True) as conn:
            deploy_flows(conn, [flow])
            for i in range(args.batches):
                name = list(variants)[i % 2]
                times[name].append(one_batch(conn, variants[name], args.batch))
        factory.drop(url)
        factory.close()
    for name, values in times.items():
        median = statistics.median(values) * 1e3
        p90 = statistics.quantiles(values, n=10)[8] * 1e3
        print(f"{name:>12}: median {median:.3f} ms, p90 {p90:.3f} ms per batch of {args.batch}")


if __name__ == "__main__":
    main()
