"""Contention: NOTIFY's commit serialisation under a concurrent WAL-heavy writer.

A transaction that called ``pg_notify`` takes one lock for the whole database cluster
(wait event ``Lock:object``) before it commits and holds it until its commit is flushed, so
notifying commits queue behind each other's WAL flushes. A writer that keeps the WAL busy
makes every flush, and so that queue, slower.

One measurement pairs two drains of the independent workload by ``pgflow.Worker``
(``workers`` processes, the throughput workloads' settings), back to back, each while a
writer runs in the pgbench database of the same server: ``pgbench -c contention_clients
-j 2`` with a script of one statement, an ``INSERT`` of :data:`WRITER_ROWS` rows of about
1 KB (so about 17 KB of WAL and one WAL flush per commit, ``synchronous_commit`` as the
server has it, no row locks shared between clients). pgbench's default TPC-B-like script
was tried first: at scale 1 its clients queue on the one ``pgbench_branches`` row
(``Lock:transactionid``) and write little WAL.

- ``wakeups``: the engine as it is;
- ``silent``: every function of schema ``pgflow`` that calls ``pg_notify`` is replaced, in
  the benchmark database only, by one with the same signature and an empty body (today
  ``_emit`` and ``_wake_workers``, 0200_function_events.sql, and ``_signal_cancelled``,
  0207_function_signal_cancelled.sql), and restored afterwards. Workers still claim at
  once: every task is claimable before the drain starts.

The order alternates between repetitions. During each drain, ``pg_stat_activity`` is
sampled every 10 ms: the client backends of the benchmark database (``workers``) and of
the writer's (``writer``) by wait event, ``CPU`` for active backends waiting on nothing.
The writer's throughput is its transactions over the drain (rows it added, divided by
:data:`WRITER_ROWS`). WAL figures of these records are cluster-wide, so they include the
writer's.
"""

from __future__ import annotations

import logging
import subprocess
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from functools import partial
from pathlib import Path
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict

from benchmarks.config import Config
from benchmarks.crew import Crew
from benchmarks.server import Server
from benchmarks.workloads import Workload, measure_drain

__all__ = ["VARIANTS", "WATCHED", "WRITER_ROWS", "measure", "prepare", "silenced"]

logger = logging.getLogger(__name__)

VARIANTS = ("wakeups", "silent")
WATCHED = {"lock:object": "Lock:object", "io:walsync": "IO:WALSync"}
SAMPLE_S = 0.01
WRITER_ROWS = 16
WRITER_SCRIPT = (
    "INSERT INTO contention_writer (payload)"
    f" SELECT repeat(md5(random()::text), 32) FROM generate_series(1, {WRITER_ROWS});\n"
)
_NOTIFIERS = """
select p.oid::regprocedure::text, pg_get_functiondef(p.oid), p.prorettype = 'void'::regtype
from pg_proc p join pg_namespace n on n.oid = p.pronamespace
where n.nspname = 'pgflow' and p.prosrc like '%pg_notify%'
order by 1
"""
_ACTIVITY = """
select datname, coalesce(wait_event_type || ':' || wait_event, 'CPU'), count(*)
from pg_stat_activity
where backend_type = 'client backend' and state = 'active' and pid <> pg_backend_pid()
  and datname = any(%s)
group by 1, 2
"""
_QUOTE = "AS $function$"


def prepare(server: Server) -> None:
    """The writer's table in the pgbench database."""
    with psycopg.connect(server.pgbench_url, autocommit=True) as conn:
        conn.execute("create table if not exists contention_writer (payload text not null)")


def measure(
    server: Server, crew: Crew, config: Config, workers: int, rep: int
) -> list[dict[str, Any]]:
    """Both variants, back to back (order alternating with ``rep``); one record each."""
    base = Workload("contention", "bench_single", config.independent_runs,
                    config.independent_runs, "task")  # fmt: skip
    records = []
    for variant in VARIANTS if rep % 2 == 0 else VARIANTS[::-1]:
        with ExitStack() as stack:
            if variant == "silent":
                stack.enter_context(silenced(server.url))
            sampler = WaitSampler(server)
            writer = Writer(server, config.contention_clients)
            record = measure_drain(
                server, crew, config, base, layer="worker", workers=workers,
                during=partial(_both, writer, sampler),
            )  # fmt: skip
        record.update(kind="contention", variant=variant, writer=writer.result,
                      waits=sampler.summary())  # fmt: skip
        records.append(record)
    return records


@contextmanager
def _both(writer: Writer, sampler: WaitSampler) -> Iterator[None]:
    with writer.running(), sampler.sampling():
        yield


@contextmanager
def silenced(url: str) -> Iterator[list[str]]:
    """Every ``pgflow`` function that calls ``pg_notify``, with an empty body meanwhile.

    Raises:
        RuntimeError: such a function returns something (so it is not a notify helper
            whose body can be emptied): this workload needs updating.
    """
    with psycopg.connect(url, autocommit=True) as conn:
        found = conn.execute(_NOTIFIERS).fetchall()
    for name, definition, void in found:
        if not void or _QUOTE not in definition or "plpgsql" not in definition.lower():
            raise RuntimeError(
                f"contention: {name} calls pg_notify but is not a void plpgsql helper, so "
                "its body cannot just be emptied; update benchmarks/contention.py"
            )
    empty = [f"{d.split(_QUOTE)[0]}{_QUOTE}\nbegin\nend;\n$function$" for _, d, _ in found]
    _execute(url, empty)
    try:
        yield [name for name, _, _ in found]
    finally:
        _execute(url, [definition for _, definition, _ in found])


def _execute(url: str, statements: list[str]) -> None:
    """Run DDL and disconnect (a drain's statistics wait until it is alone)."""
    with psycopg.connect(url, autocommit=True) as conn:
        for statement in statements:
            conn.execute(statement.encode())


class Writer:
    """``pgbench`` running :data:`WRITER_SCRIPT` in the pgbench database while a drain runs."""

    def __init__(self, server: Server, clients: int) -> None:
        self.url, self.clients = server.pgbench_url, clients
        self.result: dict[str, Any] = {}

    @contextmanager
    def running(self) -> Iterator[None]:
        """Run the writer inside the block; its figures are in :attr:`result` after."""
        with tempfile.TemporaryDirectory() as tmp, psycopg.connect(self.url) as conn:
            conn.autocommit = True
            script = Path(tmp) / "writer.sql"
            script.write_text(WRITER_SCRIPT)
            conn.execute("truncate contention_writer")
            command = [_pgbench(), "-n", "-f", str(script), "-c", str(self.clients), "-j", "2",
                       "-T", "600", self.url]  # fmt: skip
            proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            try:
                before = _wait_for_clients(conn, self.clients, proc)
                started = time.monotonic()
                yield
                seconds = time.monotonic() - started
                after = _written(conn)
            finally:
                proc.terminate()
                proc.wait(timeout=30)
        transactions = (after["rows"] - before["rows"]) / WRITER_ROWS
        self.result = {
            "clients": self.clients,
            "rows_per_transaction": WRITER_ROWS,
            "seconds": seconds,
            "transactions": transactions,
            "tps": transactions / seconds,
            "wal_mib_per_s": (after["wal"] - before["wal"]) / seconds / 2**20,
        }


def _pgbench() -> str:
    from pgflow.db.embedded import bin_dir

    return str(bin_dir() / "pgbench")


def _written(conn: psycopg.Connection[Any]) -> dict[str, int]:
    """Rows in the writer's table, and the WAL position (bytes)."""
    row = conn.execute(
        "select (select count(*) from contention_writer),"
        " (pg_current_wal_lsn() - '0/0'::pg_lsn)::bigint"
    ).fetchone()
    assert row is not None
    return {"rows": int(row[0]), "wal": int(row[1])}


def _wait_for_clients(conn: psycopg.Connection[Any], clients: int, proc: Any) -> dict[str, int]:
    """Until ``clients`` pgbench sessions are connected and each could have committed."""
    query = (
        "select count(*) from pg_stat_activity where datname = current_database()"
        " and application_name = 'pgbench'"
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        row = conn.execute(query).fetchone()
        if row and row[0] >= clients and (written := _written(conn))["rows"] >= clients:
            return written
        if proc.poll() is not None:
            raise RuntimeError(f"pgbench exited: {proc.stderr.read().decode().strip()}")
        time.sleep(0.02)
    raise TimeoutError(f"pgbench did not start {clients} clients within 30 s")


class WaitSampler:
    """Samples ``pg_stat_activity`` in a thread while a drain runs."""

    def __init__(self, server: Server) -> None:
        self.admin_url = server.admin_url
        self.roles = {
            str(conninfo_to_dict(server.url)["dbname"]): "workers",
            str(conninfo_to_dict(server.pgbench_url)["dbname"]): "writer",
        }
        self.samples = 0
        self.counts: dict[str, Counter[str]] = {role: Counter() for role in self.roles.values()}
        self.peaks: dict[str, Counter[str]] = {role: Counter() for role in self.roles.values()}
        self._stop = threading.Event()

    @contextmanager
    def sampling(self) -> Iterator[None]:
        """Sample in a background thread inside the block."""
        thread = threading.Thread(target=self._run, name="wait-sampler", daemon=True)
        thread.start()
        try:
            yield
        finally:
            self._stop.set()
            thread.join(timeout=10)

    def _run(self) -> None:
        with psycopg.connect(self.admin_url, autocommit=True, prepare_threshold=0) as conn:
            names = list(self.roles)
            while not self._stop.wait(SAMPLE_S):
                sample: dict[str, Counter[str]] = {r: Counter() for r in self.counts}
                for datname, event, count in conn.execute(_ACTIVITY, [names]).fetchall():
                    name: str = WATCHED.get(str(event).lower(), str(event))
                    sample[self.roles[datname]][name] += count
                self.samples += 1
                for role, events in sample.items():
                    self.counts[role].update(events)
                    for event, count in events.items():
                        self.peaks[role][event] = max(self.peaks[role][event], count)

    def summary(self) -> dict[str, Any]:
        """Per role: the mean number of backends in each wait event per sample, and peaks."""
        n = max(self.samples, 1)
        return {
            "samples": self.samples,
            "interval_s": SAMPLE_S,
            **{
                role: {
                    event: {"mean": count / n, "max": self.peaks[role][event]}
                    for event, count in counts.most_common()
                }
                for role, counts in self.counts.items()
            },
        }
