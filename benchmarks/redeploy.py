"""``python -m benchmarks.redeploy``: how long re-deploying an unchanged flow takes.

Deploys a chain of N steps, then re-applies the same flow; prints the seconds each
re-deploy took for N = 250, 1000 and 4000, on a fresh embedded server, with the current
schema and with only the migrations up to ``--schema-version`` (e.g. 1, the first
release) to compare.
"""

from __future__ import annotations

import argparse
import time

import psycopg

from pgflow import Flow
from pgflow.db.schema import SchemaManager
from pgflow.deploy import deploy_flows
from pgflow.migrations import migrations
from pgflow.testing.databases import DatabaseFactory, start_server


def chain(n: int) -> Flow:
    """A flow of n steps, each depending on the one before."""
    flow = Flow(f"chain_{n}")

    def handler(**_: object) -> int:
        return 1

    flow.step("s0", handler)
    for i in range(1, n):
        flow.step(f"s{i}", handler, depends_on=[f"s{i - 1}"])
    return flow


def measure(url: str, n: int) -> float:
    """Seconds to re-deploy an unchanged n-step flow."""
    flow = chain(n)
    with psycopg.connect(url, autocommit=True) as conn:
        deploy_flows(conn, [flow])
        started = time.perf_counter()
        deploy_flows(conn, [flow])
        return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--schema-version", type=int, default=None)
    args = parser.parse_args()
    wanted = migrations()[: args.schema_version] if args.schema_version else migrations()
    with start_server() as server:
        factory = DatabaseFactory(server)
        try:
            for n in (250, 1000, 4000):
                url = factory.create(schema=False)
                with psycopg.connect(url, autocommit=True) as conn:
                    SchemaManager(conn, wanted).install()
                print(
                    f"schema {wanted[-1].filename}: re-deploy of {n} unchanged steps: "
                    f"{measure(url, n):.3f} s",
                    flush=True,
                )
                factory.drop(url)
        finally:
            factory.close()


if __name__ == "__main__":
    main()
