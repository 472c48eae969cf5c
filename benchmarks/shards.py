"""``python -m benchmarks.shards``: one database against shards behind PL/Proxy.

Builds a PL/Proxy server and three shard servers on this machine (the system PostgreSQL
15 with Debian's ``postgresql-15-plproxy``, as :mod:`tests.sharding_clusters` does) and,
in each round, in a rotating order, measures three set-ups on fresh databases:

- ``1 database``: one pgflow database; the client and one ``pgflow.Worker`` connect to it;
- ``1 shard + proxy``: the same behind a proxy: the client starts runs through the proxy,
  the worker serves the shard (``Worker(shards=[url])``): the proxy's own cost;
- ``3 shards + proxy``: three shards, each on a server of its own; the client starts
  through the proxy, one worker serves the three (one claim loop per shard).

Each set-up starts ``--runs`` three-step chains one by one with ``pgflow.Client`` (what a
web request does), then drains them with the worker (empty async handlers; ``--concurrency``
slots in all, split evenly over the shards). Printed per measurement and as medians:
starts/s, tasks/s, and CPU µs per task of all servers together and of the proxy alone.

On one machine the three shards share its cores, so this shows the **overhead** of
sharding (an extra hop on every start and read, three servers' fixed costs on the same
cores), never its gain: the gain comes from giving each shard a machine of its own
(docs/scaling.md, "Sharding: the model").

Example: ``python -m benchmarks.shards --runs 1500 --rounds 3``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import psycopg

from benchmarks.cpu import server_cpu
from pgflow import Client, Context, Flow, Worker
from pgflow.db.schema import install as install_schema
from pgflow.sharding import deploy_to_shards, install_proxy
from tests.sharding_clusters import PG15_BIN, PLPROXY, ShardedClusters, sharded_clusters

SETUPS = ("1 database", "1 shard + proxy", "3 shards + proxy")
STEPS = 3
REAPED = 0.5
"""Seconds to wait before reading the servers' CPU once the worker closed its sessions: an
exited backend's CPU time is only counted once its postmaster has reaped it."""
flow = Flow("bench_shard_chain", max_attempts=3, base_delay=0, timeout=30)


@flow.step()
async def one(input: dict[str, int], ctx: Context) -> int:
    return input["n"]


@flow.step(depends_on=[one])
async def two(one: int, ctx: Context) -> int:
    return one + 1


@flow.step(depends_on=[two])
async def three(two: int, ctx: Context) -> int:
    return two + 1


def _pid(cluster: Any) -> int:
    return int((cluster.pgdata / "postmaster.pid").read_text().split()[0])


def _cpu(clusters: list[Any]) -> float:
    return sum(server_cpu(_pid(c)) or 0.0 for c in clusters)


@contextmanager
def _setup(
    servers: ShardedClusters, name: str
) -> Iterator[tuple[str, list[str] | None, list[Any]]]:
    """Fresh databases for one set-up: (client URL, worker shards or None, servers used)."""
    db = f"b_{uuid.uuid4().hex[:8]}"
    used = servers.shards[: 3 if name.startswith("3") else 1]
    for cluster in used:
        cluster.execute(f"create database {db}")
    shard_urls = [cluster.url(db) for cluster in used]
    if name == "1 database":
        install_schema(shard_urls[0])
        deploy_to_shards(shard_urls, [flow], dev=True)
        yield shard_urls[0], None, used
        return
    servers.proxy.execute(f"create database {db}")
    install_proxy(servers.proxy.url(db), shard_urls)
    deploy_to_shards(shard_urls, [flow], dev=True)
    yield servers.proxy.url(db), shard_urls, [servers.proxy, *used]


def measure(servers: ShardedClusters, name: str, runs: int, concurrency: int) -> dict[str, Any]:
    """Start ``runs`` chains through the client, then drain them with one worker."""
    with _setup(servers, name) as (client_url, shards, used):
        proxy = [servers.proxy] if shards is not None else []
        cpu0, proxy0, t0 = _cpu(used), _cpu(proxy), time.monotonic()
        with Client(client_url) as client:
            for n in range(runs):
                client.start(flow, {"n": n})
            t1, proxy1 = time.monotonic(), _cpu(proxy)  # its session still alive: counted
        per_shard = max(1, concurrency // len(shards or [client_url]))
        options: dict[str, Any] = {"concurrency": per_shard, "poll_interval": 0.2}
        worker = (
            Worker([flow], shards=shards, **options)
            if shards
            else Worker([flow], client_url, **options)
        )
        worker.run(until_idle=True)
        t2 = time.monotonic()
        time.sleep(REAPED)
        cpu2 = _cpu(used)
        _check_done(client_url, shards, runs)
    tasks = runs * STEPS
    return {
        "setup": name,
        "starts_per_s": runs / (t1 - t0),
        "tasks_per_s": tasks / (t2 - t1),
        "server_cpu_us_per_task": (cpu2 - cpu0) / tasks * 1e6,
        "proxy_cpu_us_per_start": (proxy1 - proxy0) / runs * 1e6 if proxy else 0.0,
    }


def _check_done(url: str, shards: list[str] | None, runs: int) -> None:
    done = 0
    for shard in shards or [url]:
        with psycopg.connect(shard, autocommit=True) as conn:
            row = conn.execute(
                "select count(*) from pgflow.runs where status = 'completed'"
            ).fetchone()
            done += int(row[0]) if row else 0
    if done != runs:
        raise SystemExit(f"only {done} of {runs} runs completed: the measurement is void")


def _median(rows: list[dict[str, Any]], name: str, key: str) -> float:
    return statistics.median(r[key] for r in rows if r["setup"] == name)


def report(rows: list[dict[str, Any]], print_: Callable[[str], None] = print) -> None:
    print_(
        "| set-up | starts/s (one client) | tasks/s (one worker) | server CPU µs/task "
        "| proxy CPU µs/start |"
    )
    print_("|---|---|---|---|---|")
    for name in SETUPS:
        print_(
            f"| {name} | {_median(rows, name, 'starts_per_s'):,.0f} "
            f"| {_median(rows, name, 'tasks_per_s'):,.0f} "
            f"| {_median(rows, name, 'server_cpu_us_per_task'):,.0f} "
            f"| {_median(rows, name, 'proxy_cpu_us_per_start'):,.0f} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.shards", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--runs", type=int, default=1500, help="chains per measurement")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of the three set-ups")
    parser.add_argument("--concurrency", type=int, default=24, help="worker slots in all")
    args = parser.parse_args()
    if not (PG15_BIN / "initdb").exists() or not PLPROXY.exists():
        raise SystemExit("needs PostgreSQL 15 and PL/Proxy: apt-get install postgresql-15-plproxy")
    rows: list[dict[str, Any]] = []
    with sharded_clusters(3) as servers:
        for round_ in range(args.rounds):
            order = SETUPS[round_ % 3 :] + SETUPS[: round_ % 3]
            for name in order:
                row = measure(servers, name, args.runs, args.concurrency)
                rows.append(row)
                print(json.dumps({"round": round_, **{k: _rounded(v) for k, v in row.items()}}))
    report(rows)


def _rounded(value: Any) -> Any:
    return round(value, 1) if isinstance(value, float) else value


if __name__ == "__main__":
    main()
