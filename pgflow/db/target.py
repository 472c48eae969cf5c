"""Where the database is: the URL a command or worker uses, and where it came from.

The URL is resolved in this order (the same everywhere a URL is accepted):

1. an explicit argument (the CLI's ``--database-url``),
2. the ``PGFLOW_DATABASE_URL`` environment variable,
3. the ``DATABASE_URL`` environment variable,
4. ``[tool.pgflow] database_url`` in the nearest ``pyproject.toml`` (searched upward),
5. otherwise the embedded server in ``<project>/.pgflow/`` (started on demand).

Any of them may be a multi-host URL (``postgresql://a:5432,b:5432/db?target_session_attrs=
read-write``): libpq tries the hosts in turn and keeps the first that qualifies. Two
optional URLs sit beside it (docs/scaling.md): ``listen_url`` (``PGFLOW_LISTEN_URL``), a
direct connection for LISTEN when the database URL goes through a transaction-pooling
PgBouncer, and ``reader_url`` (``PGFLOW_READER_URL``), a replica for read-only commands.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import psycopg
from psycopg.conninfo import conninfo_to_dict

from pgflow.db import embedded
from pgflow.db.errors import describe_conninfo, redact
from pgflow.db.project import find_pyproject, project_dir
from pgflow.errors import ConfigurationError

__all__ = [
    "LISTEN_URL_ENV",
    "READER_URL_ENV",
    "DatabaseTarget",
    "Source",
    "check_conninfo",
    "configured_database_url",
    "configured_listen_url",
    "resolve_database",
    "resolve_reader",
]

Source = Literal[
    "argument",
    "PGFLOW_DATABASE_URL",
    "DATABASE_URL",
    "pyproject",
    "embedded",
    "reader_argument",
    "PGFLOW_READER_URL",
]
LISTEN_URL_ENV = "PGFLOW_LISTEN_URL"
READER_URL_ENV = "PGFLOW_READER_URL"
_ENV_VARS: tuple[Literal["PGFLOW_DATABASE_URL", "DATABASE_URL"], ...] = (
    "PGFLOW_DATABASE_URL",
    "DATABASE_URL",
)


@dataclass(frozen=True, slots=True)
class DatabaseTarget:
    """A resolved database URL and where it came from.

    Attributes:
        url: the libpq URL or conninfo string.
        source: which setting supplied it.
        origin: the file that supplied it (``pyproject.toml``) or the embedded data dir.
    """

    url: str
    source: Source
    origin: Path | None = None

    @property
    def is_embedded(self) -> bool:
        """Whether the URL points at pgflow's embedded server."""
        return self.source == "embedded"

    @property
    def is_reader(self) -> bool:
        """Whether the URL is a read replica's (``--reader-url``, ``PGFLOW_READER_URL``)."""
        return self.source in ("reader_argument", "PGFLOW_READER_URL")

    def describe(self, cwd: Path | None = None) -> str:
        """One line saying which database is used, for a command to print."""
        if self.source == "embedded":
            where = _relative(self.origin, cwd)
            return (
                f"Using embedded Postgres in {where} "
                "(pass --database-url or set PGFLOW_DATABASE_URL to use your own)"
            )
        server = describe_conninfo(self.url)
        if self.source == "argument":
            return f"Using Postgres at {server} (from --database-url)"
        if self.source == "reader_argument":
            return f"Reading from Postgres at {server} (from --reader-url)"
        if self.source == "PGFLOW_READER_URL":
            return f"Reading from Postgres at {server} (from PGFLOW_READER_URL)"
        if self.source == "pyproject":
            return f"Using Postgres at {server} (from {_relative(self.origin, cwd)})"
        return f"Using Postgres at {server} (from {self.source})"


def _relative(path: Path | None, cwd: Path | None) -> str:
    if path is None:
        return "?"
    base = (cwd or Path.cwd()).resolve()
    try:
        return f"./{path.resolve().relative_to(base)}"
    except ValueError:
        return str(path)


def configured_database_url(
    database_url: str | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> DatabaseTarget | None:
    """Resolve the URL from settings only (steps 1-4); ``None`` means "use embedded".

    Empty values count as unset, so ``DATABASE_URL=`` does not hide the next setting.

    Raises:
        ConfigurationError: ``pyproject.toml`` is not valid TOML, or its
            ``[tool.pgflow] database_url`` is not a non-empty string.
    """
    if database_url:
        return DatabaseTarget(database_url, "argument")
    env = os.environ if environ is None else environ
    for name in _ENV_VARS:
        if env.get(name):
            return DatabaseTarget(env[name], name)
    pyproject = find_pyproject(cwd)
    if pyproject is not None:
        url = _pyproject_url(pyproject)
        if url is not None:
            return DatabaseTarget(url, "pyproject", pyproject)
    return None


def _pyproject_url(path: Path) -> str | None:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigurationError(
            f"could not read {path}: {exc}",
            hint="Fix the file, or pass --database-url to bypass it.",
        ) from exc
    value = data.get("tool", {}).get("pgflow", {}).get("database_url")
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise ConfigurationError(
            f"{path}: [tool.pgflow] database_url must be a non-empty string, got {value!r}",
            hint='Write it as database_url = "postgresql://user@host/dbname".',
        )
    return value


def resolve_database(
    database_url: str | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> DatabaseTarget:
    """Resolve the database to use, starting the embedded server when nothing is configured.

    Raises:
        ConfigurationError: a setting is invalid, or the embedded server cannot start.
    """
    target = configured_database_url(database_url, environ=environ, cwd=cwd)
    if target is not None:
        return target
    data_dir = embedded.data_dir(project_dir(cwd))
    return DatabaseTarget(embedded.start_embedded(data_dir), "embedded", data_dir.parent)


def configured_listen_url(
    listen_url: str | None = None, *, environ: Mapping[str, str] | None = None
) -> str | None:
    """The direct URL for LISTEN: the argument, else ``PGFLOW_LISTEN_URL``; None when unset.

    Raises:
        ConfigurationError: the URL cannot be parsed.
    """
    env = os.environ if environ is None else environ
    url = listen_url or env.get(LISTEN_URL_ENV) or None
    if url is not None:
        check_conninfo(url)
    return url


def resolve_reader(
    reader_url: str | None = None,
    database_url: str | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> DatabaseTarget:
    """The database read-only commands use: a replica when one is configured.

    In order: ``reader_url`` (the CLI's ``--reader-url``), ``PGFLOW_READER_URL``, else the
    database itself (:func:`resolve_database` of ``database_url``). Reads from a replica
    lag behind the primary by its replay delay.

    Raises:
        ConfigurationError: a setting is invalid, or the embedded server cannot start.
    """
    env = os.environ if environ is None else environ
    if reader_url:
        check_conninfo(reader_url)
        return DatabaseTarget(reader_url, "reader_argument")
    if env.get(READER_URL_ENV):
        check_conninfo(env[READER_URL_ENV])
        return DatabaseTarget(env[READER_URL_ENV], "PGFLOW_READER_URL")
    return resolve_database(database_url, environ=environ, cwd=cwd)


def check_conninfo(conninfo: str) -> None:
    """Refuse a malformed URL before trying to connect with it.

    Raises:
        ConfigurationError: libpq cannot parse it (the message does not repeat the URL).
    """
    try:
        conninfo_to_dict(conninfo)
    except psycopg.ProgrammingError as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else "cannot be parsed"
        raise ConfigurationError(
            f"invalid database URL: {redact(reason)}",
            hint="Write it as postgresql://user:password@host:port/dbname "
            "(or as libpq key=value pairs).",
        ) from exc
