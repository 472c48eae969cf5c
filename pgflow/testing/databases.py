"""Disposable Postgres databases for tests: a server, a schema template, a clone per test.

Used by the pytest plugin :mod:`pgflow.testing` and usable without pytest (benchmarks,
scripts). The server is chosen once (:func:`start_server`):

1. ``PGFLOW_TEST_DATABASE_URL`` when set: a role there needs ``CREATEDB``;
2. else a testcontainers Postgres when a Docker engine answers (image from
   ``PGFLOW_TEST_POSTGRES_IMAGE``, default ``postgres:18-alpine``);
3. else an embedded server in a temporary directory, stopped and removed afterwards.

``PGFLOW_TEST_SERVER=embedded`` (or ``docker``) forces a choice. The schema is installed once
into a template database, by the installer from the packaged migrations; each test gets a
clone (``CREATE DATABASE ... TEMPLATE``, milliseconds) that is dropped afterwards.
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

from pgflow.db import embedded
from pgflow.db.schema import install

__all__ = [
    "DatabaseFactory",
    "DatabaseServer",
    "create_database",
    "docker_reachable",
    "drop_database",
    "start_server",
    "temporary_project",
    "with_database",
]

ServerKind = Literal["env", "docker", "embedded"]
# Durability is pointless for a throw-away server; skipping fsync makes CREATE DATABASE cheap.
_FAST_SETTINGS = ("fsync", "synchronous_commit", "full_page_writes")


@dataclass(frozen=True, slots=True)
class DatabaseServer:
    """A Postgres server the tests may create databases on.

    Attributes:
        admin_url: URL of a database to run ``CREATE/DROP DATABASE`` from.
        kind: where it came from (``env``, ``docker`` or ``embedded``).
    """

    admin_url: str
    kind: ServerKind

    def url_for(self, dbname: str) -> str:
        """The URL of another database on the same server."""
        return with_database(self.admin_url, dbname)


def with_database(url: str, dbname: str) -> str:
    """Return ``url`` pointing at database ``dbname`` (as a libpq conninfo string)."""
    return make_conninfo(url, dbname=dbname)


def docker_reachable(timeout: float = 0.3) -> bool:
    """Whether a Docker engine answers on ``DOCKER_HOST`` (or the default socket), quickly."""
    host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    try:
        if host.startswith("unix://"):
            path = host.removeprefix("unix://")
            if not os.path.exists(path):
                return False
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.settimeout(timeout)
                sock.connect(path)
            return True
        if host.startswith("tcp://"):
            address, _, port = host.removeprefix("tcp://").rstrip("/").rpartition(":")
            socket.create_connection((address, int(port)), timeout=timeout).close()
            return True
    except (OSError, ValueError):
        return False
    return False


def _chosen_kind() -> ServerKind:
    if os.environ.get("PGFLOW_TEST_DATABASE_URL"):
        return "env"
    forced = os.environ.get("PGFLOW_TEST_SERVER", "")
    if forced == "embedded" or (forced != "docker" and not docker_reachable()):
        return "embedded"
    return "docker"


@contextmanager
def start_server() -> Iterator[DatabaseServer]:
    """Provide a server as described in the module docstring, and clean it up."""
    kind = _chosen_kind()
    if kind == "env":
        yield DatabaseServer(os.environ["PGFLOW_TEST_DATABASE_URL"], "env")
    elif kind == "docker":
        with _docker_server() as server:
            yield server
    else:
        with _embedded_server() as server:
            yield server


@contextmanager
def _docker_server() -> Iterator[DatabaseServer]:  # pragma: no cover - needs Docker
    from testcontainers.community.postgres import PostgresContainer

    image = os.environ.get("PGFLOW_TEST_POSTGRES_IMAGE", "postgres:18-alpine")
    with PostgresContainer(image, driver=None) as container:
        server = DatabaseServer(container.get_connection_url(), "docker")
        _tune_for_tests(server.admin_url)
        yield server


@contextmanager
def _embedded_server() -> Iterator[DatabaseServer]:
    root = Path(tempfile.mkdtemp(prefix="pgflow-test-"))
    pgdata = root / "pg"
    try:
        server = DatabaseServer(embedded.start_embedded(pgdata, database="postgres"), "embedded")
        _tune_for_tests(server.admin_url)
        yield server
    finally:
        embedded.stop_embedded(pgdata)
        shutil.rmtree(root, ignore_errors=True)


def _tune_for_tests(admin_url: str) -> None:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        for name in _FAST_SETTINGS:
            conn.execute(sql.SQL("alter system set {} = off").format(sql.Identifier(name)))
        conn.execute("select pg_reload_conf()")


def create_database(admin_url: str, name: str, template: str | None = None) -> None:
    """``CREATE DATABASE name [TEMPLATE template]`` on the server of ``admin_url``.

    On a server without fsync (PostgreSQL 15 or later) the files are copied
    (``STRATEGY file_copy``): half the CPU of the default WAL-logged copy, whose advantage
    (no checkpoints) is moot when nothing is synced.
    """
    statement = sql.SQL("create database {}").format(sql.Identifier(name))
    if template is not None:
        statement += sql.SQL(" template {}").format(sql.Identifier(template))
    with psycopg.connect(admin_url, autocommit=True) as conn:
        fast = conn.execute(
            "select current_setting('server_version_num')::int >= 150000 "
            "and current_setting('fsync') = 'off'"
        ).fetchone()
        if fast is not None and fast[0]:
            statement += sql.SQL(" strategy file_copy")
        conn.execute(statement)


def drop_database(admin_url: str, name: str) -> None:
    """Drop a database, disconnecting whoever is still connected to it."""
    statement = sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name))
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(statement)


@dataclass
class DatabaseFactory:
    """Creates per-test databases on a server, cloning a template with the schema installed.

    The template is built on first use, so a session that only needs empty databases
    never installs the schema, and a broken schema fails only the tests that need it.

    Cloning copies the whole template (about 10 MB of files and catalogs: a tenth to a
    fifth of a second of the server's CPU on a small machine), so once the template exists a
    background thread keeps ``spare`` clones ready: a test takes one at once while the next
    is made during the idle time of the test that runs. ``spare=0`` makes each clone on
    demand.
    """

    server: DatabaseServer
    prefix: str = field(default_factory=lambda: f"pgflow_test_{os.getpid()}_{uuid.uuid4().hex[:6]}")
    spare: int = 2
    _template: str | None = None
    _template_error: BaseException | None = None
    _created: list[str] = field(default_factory=list)
    _ready: list[str] = field(default_factory=list)
    _filler: threading.Thread | None = None
    _closed: bool = False
    _cond: threading.Condition = field(default_factory=threading.Condition)

    def template(self) -> str:
        """The name of the template database (installed on first call)."""
        if self._template_error is not None:
            raise self._template_error
        if self._template is None:
            name = f"{self.prefix}_template"
            create_database(self.server.admin_url, name)
            self._created.append(name)
            try:
                install(self.server.url_for(name))
            except BaseException as exc:
                self._template_error = exc
                raise
            self._template = name
        return self._template

    def create(self, *, schema: bool = True) -> str:
        """Create a fresh database (a clone of the template, or empty) and return its URL."""
        if not schema:
            empty = self._new_name()
            create_database(self.server.admin_url, empty)
            return self.server.url_for(empty)
        template = self.template()
        name: str | None = None
        with self._cond:
            if self._ready:
                name = self._ready.pop(0)
            self._start_filler()
            self._cond.notify_all()
        if name is None:
            name = self._new_name()
            create_database(self.server.admin_url, name, template=template)
        return self.server.url_for(name)

    def drop(self, url: str) -> None:
        """Drop a database made by :meth:`create`."""
        drop_database(self.server.admin_url, str(psycopg.conninfo.conninfo_to_dict(url)["dbname"]))

    def close(self) -> None:
        """Drop the spare clones and the template (per-test databases are dropped by their
        fixtures)."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        if self._filler is not None:
            self._filler.join()
        for name in [*self._ready, *reversed(self._created)]:
            drop_database(self.server.admin_url, name)
        self._ready.clear()

    def _new_name(self) -> str:
        return f"{self.prefix}_{uuid.uuid4().hex[:8]}"

    def _start_filler(self) -> None:
        # called with the condition held, once the template exists
        if self.spare > 0 and self._filler is None and not self._closed:
            self._filler = threading.Thread(
                target=self._fill, name="pgflow-test-databases", daemon=True
            )
            self._filler.start()

    def _fill(self) -> None:
        assert self._template is not None
        while True:
            with self._cond:
                while not self._closed and len(self._ready) >= self.spare:
                    self._cond.wait()
                if self._closed:
                    return
            name = self._new_name()
            try:
                create_database(self.server.admin_url, name, template=self._template)
            except psycopg.Error:
                # the server is restarting or gone: the next create() clones on demand
                # (and shows the error, if it lasts) and starts a new filler
                with self._cond:
                    self._filler = None
                return
            with self._cond:
                self._ready.append(name)


@contextmanager
def temporary_project(name: str = "demo") -> Iterator[Path]:
    """A project folder with a ``pyproject.toml``; its embedded server is stopped afterwards.

    It lives in a fresh ``/tmp`` folder rather than pytest's ``tmp_path``: pytest keeps its
    temp root private (mode 0700, re-applied whenever a pytest session starts), and when
    pgflow runs as root the embedded server runs as another system user that must reach
    the data directory.
    """
    root = Path(tempfile.mkdtemp(prefix="pgflow-proj-"))
    (root / "pyproject.toml").write_text(f'[project]\nname = "{name}"\n')
    try:
        yield root
    finally:
        embedded.stop_embedded(embedded.data_dir(root))
        shutil.rmtree(root, ignore_errors=True)
