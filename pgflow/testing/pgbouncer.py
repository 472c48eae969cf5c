"""A throw-away PgBouncer in front of a test server, for tests and benchmarks.

Starts the system's ``pgbouncer`` (Debian: ``apt-get install pgbouncer``) on a free port
of 127.0.0.1, in transaction pooling mode unless told otherwise, with client
authentication ``trust`` (a ``userlist.txt`` naming the server's user; its password, if
the URL has one, is what PgBouncer logs in to Postgres with). Every database of the
server is reachable through it under its own name::

    with start_pgbouncer(server_url) as bouncer:
        url = bouncer.url_for(database_url)   # same database, through PgBouncer
        bouncer.stop()                        # PgBouncer down (clients see refused)
        bouncer.start()                       # ... and back on the same port

When this process runs as root, PgBouncer (which refuses to run as root) runs as the
owner of the server's unix-socket folder, or as ``nobody`` for a TCP server.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from psycopg.conninfo import conninfo_to_dict, make_conninfo

__all__ = ["PgBouncer", "find_pgbouncer", "start_pgbouncer"]

_CANDIDATES = ("/usr/sbin/pgbouncer", "/usr/bin/pgbouncer", "/usr/local/bin/pgbouncer")


def find_pgbouncer() -> str | None:
    """The path of the ``pgbouncer`` executable, or None when it is not installed."""
    found = shutil.which("pgbouncer")
    if found:
        return found
    return next((path for path in _CANDIDATES if os.access(path, os.X_OK)), None)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _quoted(value: str) -> str:
    return '"' + value.replace('"', '""') + '"'


class PgBouncer:
    """One PgBouncer process (see the module docstring).

    Attributes:
        port: the TCP port it listens on (127.0.0.1).
        folder: its configuration, log and pid file.
    """

    def __init__(self, server_url: str, folder: Path, *, pool_mode: str, pool_size: int) -> None:
        self.folder = folder
        self.port = _free_port()
        self._server = conninfo_to_dict(server_url)
        self._process: subprocess.Popen[bytes] | None = None
        self._write_config(pool_mode, pool_size)

    @property
    def log(self) -> str:
        """PgBouncer's log so far (for assertion messages)."""
        path = self.folder / "pgbouncer.log"
        return path.read_text(errors="replace") if path.exists() else ""

    @property
    def pid(self) -> int | None:
        """The process id while it runs."""
        return None if self._process is None else self._process.pid

    def url_for(self, database_url: str) -> str:
        """``database_url`` (a database on the same server) reached through PgBouncer."""
        params = {**conninfo_to_dict(database_url), "host": "127.0.0.1", "port": str(self.port)}
        params.pop("hostaddr", None)
        return make_conninfo("", **params)

    def start(self) -> None:
        """Start PgBouncer and wait until it accepts connections."""
        command = [find_pgbouncer() or "pgbouncer", str(self.folder / "pgbouncer.ini")]
        user = _run_as(self._server.get("host"))
        if user is not None:
            command[1:1] = ["-u", user]
        self._process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=self.folder
        )
        deadline = time.monotonic() + 10.0
        while not self._accepting():
            if self._process.poll() is not None or time.monotonic() > deadline:
                stderr = self._process.stderr.read() if self._process.stderr else b""
                self.stop()
                raise RuntimeError(
                    f"pgbouncer did not start: {stderr.decode(errors='replace')}\n{self.log}"
                )
            time.sleep(0.02)  # polling a port that is not open yet: nothing to wait on

    def stop(self) -> None:
        """Stop PgBouncer at once (SIGKILL): every client connection is cut."""
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            process.kill()
        process.wait(timeout=10)
        if process.stderr is not None:
            process.stderr.close()

    def _accepting(self) -> bool:
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
        except OSError:
            return False
        return True

    def _write_config(self, pool_mode: str, pool_size: int) -> None:
        server = self._server
        user = str(server.get("user") or pwd.getpwuid(os.getuid()).pw_name)
        password = str(server.get("password") or "")
        host = str(server.get("host") or "localhost")
        port = str(server.get("port") or "5432")
        (self.folder / "userlist.txt").write_text(f"{_quoted(user)} {_quoted(password)}\n")
        (self.folder / "pgbouncer.ini").write_text(
            "[databases]\n"
            f"* = host={host} port={port}\n"
            "[pgbouncer]\n"
            "listen_addr = 127.0.0.1\n"
            f"listen_port = {self.port}\n"
            "unix_socket_dir =\n"
            "auth_type = trust\n"
            f"auth_file = {self.folder / 'userlist.txt'}\n"
            f"pool_mode = {pool_mode}\n"
            f"default_pool_size = {pool_size}\n"
            "max_client_conn = 1000\n"
            f"logfile = {self.folder / 'pgbouncer.log'}\n"
            f"pidfile = {self.folder / 'pgbouncer.pid'}\n"
        )
        for path in (self.folder, *self.folder.iterdir()):
            path.chmod(0o777 if path.is_dir() else 0o644)


def _run_as(host: object) -> str | None:
    """The user PgBouncer runs as when we are root (it refuses root); None otherwise."""
    if os.name != "posix" or os.geteuid() != 0:
        return None
    if isinstance(host, str) and host.startswith("/") and "," not in host:
        owner = pwd.getpwuid(os.stat(host).st_uid).pw_name
        if owner != "root":
            return owner
    return "nobody"


@contextmanager
def start_pgbouncer(
    server_url: str, *, pool_mode: str = "transaction", pool_size: int = 20
) -> Iterator[PgBouncer]:
    """Start PgBouncer in front of the server of ``server_url``; stop it on exit.

    Args:
        server_url: any database URL of the server (its host, port, user and password
            are used).
        pool_mode: ``transaction`` (default), ``session`` or ``statement``.
        pool_size: server connections per database and user.

    Raises:
        RuntimeError: ``pgbouncer`` is not installed or did not start.
    """
    if find_pgbouncer() is None:
        raise RuntimeError("pgbouncer is not installed (Debian: apt-get install pgbouncer)")
    folder = Path(tempfile.mkdtemp(prefix="pgflow-pgbouncer-"))
    bouncer = PgBouncer(server_url, folder, pool_mode=pool_mode, pool_size=pool_size)
    try:
        bouncer.start()
        yield bouncer
    finally:
        bouncer.stop()
        shutil.rmtree(folder, ignore_errors=True)
