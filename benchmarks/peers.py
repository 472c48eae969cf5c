"""The side-by-side baselines, on the same server in the same run.

- pgbench, the physical limit of a small write transaction here: ``BEGIN``; a one-row
  ``UPDATE pgbench_accounts``; a one-row ``INSERT pgbench_history``; ``END``, with
  prepared statements (``-M prepared``), ``-j 2``.
- Procrastinate (optional: ``pip install -e '.[bench]'``): no-op jobs deferred up front
  in one batch, then drained by the same number of worker processes as ours, each an
  async Procrastinate worker with ``concurrency=PROCRASTINATE_CONCURRENCY`` that stops
  when the queue is empty (``wait=False``).
"""

from __future__ import annotations

import asyncio
import re
import resource
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import psycopg

from benchmarks import dbstats
from benchmarks.cpu import process_cpu, server_cpu
from benchmarks.crew import Crew, Member

__all__ = [
    "PROCRASTINATE_CONCURRENCY",
    "measure_pgbench",
    "measure_procrastinate",
    "pgbench_init",
    "procrastinate_drain",
    "procrastinate_missing",
    "procrastinate_setup",
]

# Tried 1, 4 and 16 at 4 processes: 740-880 jobs/s, within the noise (Procrastinate is
# CPU-bound here at about 1.2 ms of worker and 1 ms of server CPU per job); 4 was the best.
PROCRASTINATE_CONCURRENCY = 4
_QUEUE = "bench"

PGBENCH_SCRIPT = """\
\\set aid random(1, 100000 * :scale)
\\set bid random(1, 1 * :scale)
\\set tid random(1, 10 * :scale)
\\set delta random(-5000, 5000)
BEGIN;
UPDATE pgbench_accounts SET abalance = abalance + :delta WHERE aid = :aid;
INSERT INTO pgbench_history (tid, bid, aid, delta, mtime)
  VALUES (:tid, :bid, :aid, :delta, CURRENT_TIMESTAMP);
END;
"""


def _pgbench() -> str:
    from pgflow.db.embedded import bin_dir

    return str(bin_dir() / "pgbench")


def pgbench_init(url: str, scale: int = 1) -> None:
    """``pgbench -i`` (scale 1: 100,000 accounts, so 16 clients rarely meet on a row)."""
    subprocess.run(
        [_pgbench(), "-i", "-q", "-s", str(scale), url],
        check=True,
        capture_output=True,
        text=True,
    )


def measure_pgbench(
    url: str, clients: int, seconds: int, postmaster: int | None = None
) -> dict[str, Any]:
    """One pgbench measurement; returns TPS and the cost per transaction."""
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "update_insert.sql"
        script.write_text(PGBENCH_SCRIPT)
        with psycopg.connect(url, autocommit=True) as conn:
            before = dbstats.snapshot(conn)
            server_before = server_cpu(postmaster)
            client_before = _children_cpu()
            done = subprocess.run(
                [_pgbench(), "-M", "prepared", "-f", str(script), "-c", str(clients),
                 "-j", "2", "-T", str(seconds), url],
                check=True, capture_output=True, text=True,
            )  # fmt: skip
            client_cpu = _children_cpu() - client_before
            dbstats.wait_until_alone(conn)
            server_after = server_cpu(postmaster)
            counters = dbstats.delta(before, dbstats.snapshot(conn))
    match = re.search(r"tps = ([\d.]+) \(without initial connection time\)", done.stdout)
    if match is None:
        raise RuntimeError(f"could not read pgbench's TPS from:\n{done.stdout}\n{done.stderr}")
    transactions = re.search(r"number of transactions actually processed: (\d+)", done.stdout)
    count = int(transactions.group(1)) if transactions else 0
    return {
        "kind": "pgbench",
        "clients": clients,
        "seconds": seconds,
        "tps": float(match.group(1)),
        "transactions": count,
        "cost_per_tx": {
            **dbstats.cost_per(counters, count),
            **dbstats.cpu_per([{"cpu_s": client_cpu}], server_before, server_after, count),
        },
    }


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def procrastinate_missing() -> str | None:
    """None when Procrastinate is importable, else how to install it."""
    try:
        import procrastinate  # noqa: F401
    except ImportError:
        return "Procrastinate is not installed: .venv/bin/pip install -e '.[bench]'"
    return None


def _app(url: str) -> Any:
    import procrastinate

    app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=url))

    @app.task(name="noop", queue=_QUEUE)
    async def noop() -> None:
        return None

    return app


def procrastinate_setup(url: str) -> None:
    """Apply Procrastinate's schema to its own database."""
    app = _app(url)
    with app.open():
        app.schema_manager.apply_schema()


def _defer(url: str, jobs: int) -> float:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("truncate procrastinate_jobs, procrastinate_workers cascade")
    app = _app(url)
    began = time.monotonic()
    with app.open():
        app.tasks["noop"].batch_defer(*({} for _ in range(jobs)))
    return time.monotonic() - began


def measure_procrastinate(
    url: str,
    crew: Crew,
    workers: int,
    jobs: int,
    postmaster: int | None = None,
    concurrency: int = PROCRASTINATE_CONCURRENCY,
) -> dict[str, Any]:
    """Defer ``jobs`` no-op jobs, drain them with ``workers`` processes."""
    defer_seconds = _defer(url, jobs)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("checkpoint")
        before = dbstats.snapshot(conn)
        server_before = server_cpu(postmaster)
        result = crew.run(workers, "procrastinate_drain", {"url": url, "concurrency": concurrency})
        seconds = max(r["ended"] for r in result.results) - result.started
        dbstats.wait_until_alone(conn)
        server_after = server_cpu(postmaster)
        counters = dbstats.delta(before, dbstats.snapshot(conn))
        row = conn.execute(
            "select count(*) from procrastinate_jobs where status <> 'succeeded'"
        ).fetchone()
    if row is None or row[0]:
        raise RuntimeError(f"procrastinate: {row[0] if row else '?'} jobs not succeeded")
    return {
        "kind": "procrastinate",
        "workers": workers,
        "concurrency": concurrency,
        "jobs": jobs,
        "seconds": seconds,
        "jobs_per_s": jobs / seconds,
        "defer_seconds": defer_seconds,
        "counters": counters,
        "cost_per_job": {
            **dbstats.cost_per(counters, jobs),
            **dbstats.cpu_per(result.results, server_before, server_after, jobs),
        },
    }


def procrastinate_drain(member: Member, args: dict[str, Any]) -> dict[str, Any]:
    """Crew command: run a Procrastinate worker until the queue is empty."""
    return asyncio.run(_drain(member, args["url"], args["concurrency"]))


async def _drain(member: Member, url: str, concurrency: int) -> dict[str, Any]:
    app = _app(url)
    async with app.open_async():
        await app.check_connection_async()
        member.ready()
        cpu = process_cpu()
        await app.run_worker_async(
            queues=[_QUEUE],
            concurrency=concurrency,
            wait=False,
            install_signal_handlers=False,
        )
        return {"ended": time.monotonic(), "cpu_s": process_cpu() - cpu}
