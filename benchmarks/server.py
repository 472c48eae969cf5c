"""The database a benchmark runs against, and the facts of the machine it runs on.

By default a private embedded Postgres is started in a temporary directory with
``pg_stat_statements`` preloaded and ``max_connections = 200`` (8 worker processes with
their pools and listeners need more than the stock 100), and removed afterwards. With
``--database-url`` fresh databases are created on that server and dropped afterwards.
"""

from __future__ import annotations

import logging
import os
import platform
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

__all__ = ["Server", "install_extension", "machine_facts", "open_server"]

logger = logging.getLogger(__name__)

_SETTINGS = (
    "server_version",
    "shared_buffers",
    "synchronous_commit",
    "fsync",
    "full_page_writes",
    "data_checksums",
    "wal_level",
    "max_connections",
    "max_wal_size",
    "work_mem",
    "shared_preload_libraries",
)


@dataclass(slots=True)
class Server:
    """A server with the benchmark's databases on it.

    Attributes:
        kind: ``embedded`` (a private server in a temp dir) or ``url``.
        admin_url: a connection to the server's maintenance database.
        url: the pgflow benchmark database.
        peer_url: the database Procrastinate runs in.
        pgbench_url: the database pgbench runs in.
        stat_statements: whether ``pg_stat_statements`` is loaded and installed.
        walinspect: whether ``pg_walinspect`` is installed (WAL by record type).
        postmaster: the server's postmaster pid when it runs on this machine.
        databases: the databases this run created (dropped at the end).
    """

    kind: str
    admin_url: str
    url: str = ""
    peer_url: str = ""
    pgbench_url: str = ""
    stat_statements: bool = False
    walinspect: bool = False
    postmaster: int | None = None
    databases: list[str] = field(default_factory=list)

    def create_database(self, name: str) -> str:
        """Create an empty database and return its URL."""
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
        self.databases.append(name)
        return make_conninfo(self.admin_url, dbname=name)

    def drop_databases(self) -> None:
        """Drop the databases this run created."""
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            for name in reversed(self.databases):
                statement = sql.SQL("drop database if exists {} with (force)")
                conn.execute(statement.format(sql.Identifier(name)))
        self.databases.clear()


@contextmanager
def open_server(database_url: str | None) -> Iterator[Server]:
    """Yield a server with fresh ``url``, ``peer_url`` and ``pgbench_url`` databases."""
    with _embedded() if database_url is None else _external(database_url) as server:
        suffix = "" if server.kind == "embedded" else "_" + uuid.uuid4().hex[:6]
        try:
            server.url = server.create_database(f"pgflow_bench{suffix}")
            server.peer_url = server.create_database(f"procrastinate_bench{suffix}")
            server.pgbench_url = server.create_database(f"pgbench_bench{suffix}")
            server.stat_statements = _install_stat_statements(server.url)
            server.walinspect = install_extension(server.url, "pg_walinspect")
            server.postmaster = _postmaster(server.url)
            yield server
        finally:
            with suppress(psycopg.Error):
                server.drop_databases()


@contextmanager
def _embedded() -> Iterator[Server]:
    from pgflow.db import embedded

    root = Path(tempfile.mkdtemp(prefix="pgflow-bench-"))
    pgdata = root / "pgdata"
    try:
        admin = embedded.start_embedded(pgdata, database="postgres")
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute("alter system set shared_preload_libraries = 'pg_stat_statements'")
            conn.execute("alter system set max_connections = 200")
        embedded.stop_embedded(pgdata)  # both settings need a restart
        admin = embedded.start_embedded(pgdata, database="postgres")
        yield Server(kind="embedded", admin_url=admin)
    finally:
        with suppress(Exception):
            embedded.stop_embedded(pgdata)
        shutil.rmtree(root, ignore_errors=True)


@contextmanager
def _external(url: str) -> Iterator[Server]:
    yield Server(kind="url", admin_url=url)


def _install_stat_statements(url: str) -> bool:
    with psycopg.connect(url, autocommit=True) as conn:
        loaded = conn.execute("select current_setting('shared_preload_libraries')").fetchone()
        if loaded is None or "pg_stat_statements" not in str(loaded[0]):
            return False
    return install_extension(url, "pg_stat_statements")


def _postmaster(url: str) -> int | None:
    from benchmarks.cpu import find_postmaster

    with psycopg.connect(url, autocommit=True) as conn:
        return find_postmaster(conn.info.backend_pid)


def install_extension(url: str, extension: str) -> bool:
    """``create extension if not exists``; False (with a warning) when it cannot."""
    with psycopg.connect(url, autocommit=True) as conn:
        try:
            conn.execute(
                sql.SQL("create extension if not exists {}").format(sql.Identifier(extension))
            )
        except psycopg.Error as exc:
            logger.warning("%s not installed: %s", extension, exc)
            return False
    return True


def machine_facts(server: Server) -> dict[str, Any]:
    """Cores, memory, CPU model, load, Python and Postgres versions and key settings."""
    with psycopg.connect(server.url, autocommit=True) as conn:
        settings = {
            name: conn.execute("select current_setting(%s)", [name]).fetchone()[0]  # type: ignore[index]
            for name in _SETTINGS
        }
        version = conn.execute("select version()").fetchone()[0]  # type: ignore[index]
    return {
        "cores": os.cpu_count(),
        "memory_gib": round(_meminfo_kib("MemTotal") / 1024 / 1024, 1),
        "cpu_model": _cpu_model(),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "psycopg": psycopg.__version__,
        "postgres": version,
        "server": server.kind,
        "settings": settings,
        "loadavg_at_start": os.getloadavg(),
    }


def _meminfo_kib(key: str) -> int:
    with suppress(OSError), open("/proc/meminfo") as meminfo:
        for line in meminfo:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def _cpu_model() -> str:
    with suppress(OSError), open("/proc/cpuinfo") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"
