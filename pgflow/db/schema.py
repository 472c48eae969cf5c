"""Install and upgrade the pgflow schema by applying the packaged migrations.

Every install, fresh or upgrade, runs the same code path (graphile-worker's approach):

1. take a transaction-scoped advisory lock, so concurrent installers queue up;
2. create ``pgflow.schema_migrations`` if absent (bootstrap, outside the migrations);
3. refuse if the database knows a migration this package does not (it is newer), or if an
   applied migration's checksum differs from the packaged file (someone edited it);
4. apply the next pending migration in that same transaction, recording its row *first*.

One transaction per migration: a failure rolls back that migration and its row, leaving
the earlier ones applied. NOTICEs raised by PL/pgSQL during a migration (for example the
GRANT statements a DBA must run when the installer may not create roles) are collected and
returned for the caller to print.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row

from pgflow.db.connection import connect
from pgflow.db.errors import translate_error, wrap_db_errors
from pgflow.errors import DatabaseError, SchemaError
from pgflow.migrations import Migration, migrations
from pgflow.sql import query

DBA_PREFIX = "pgflow: ask a DBA to run: "
"""How the schema's grants file words a statement the installer could not run itself."""

__all__ = [
    "AppliedMigration",
    "InstallResult",
    "SchemaManager",
    "SchemaStatus",
    "install",
    "status",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class AppliedMigration:
    """A row of ``pgflow.schema_migrations``."""

    id: int
    name: str
    checksum: str
    applied_at: datetime


@dataclass(frozen=True, slots=True)
class SchemaStatus:
    """What is installed, and what this package would still apply.

    Attributes:
        applied: the migrations recorded in the database, oldest first.
        pending: the packaged migrations not applied yet, in order.
        version: the highest applied id, ``None`` when the schema is not installed.
        latest: the highest id this package ships.
    """

    applied: tuple[AppliedMigration, ...]
    pending: tuple[Migration, ...]
    version: int | None
    latest: int

    @property
    def up_to_date(self) -> bool:
        """Whether nothing is pending."""
        return not self.pending


@dataclass(frozen=True, slots=True)
class InstallResult:
    """What :meth:`SchemaManager.install` did.

    Attributes:
        applied: the migrations applied by this call (empty: already up to date).
        notices: lines the migrations asked to show to the person installing.
        version: the schema version after the install.
    """

    applied: tuple[Migration, ...]
    notices: tuple[str, ...]
    version: int | None


class SchemaManager:
    """Installs, upgrades and inspects the pgflow schema over one connection.

    Args:
        conn: a psycopg connection. Each migration commits on its own, unless the caller
            has a transaction open: then they join it as savepoints and commit with it.
        migrations_: the migrations to apply; defaults to the packaged ones.
    """

    def __init__(
        self, conn: psycopg.Connection[Any], migrations_: Sequence[Migration] | None = None
    ) -> None:
        self.conn = conn
        self.migrations = tuple(migrations() if migrations_ is None else migrations_)

    @wrap_db_errors
    def status(self) -> SchemaStatus:
        """Return applied and pending migrations without changing anything.

        Raises:
            SchemaError: the database is ahead of this package, or a checksum differs.
        """
        applied = self._applied() if self._table_exists() else ()
        self._verify(applied)
        return self._status(applied)

    @wrap_db_errors
    def install(self) -> InstallResult:
        """Apply every pending migration, one transaction each; idempotent.

        Raises:
            SchemaError: the database is ahead of this package, or a checksum differs.
            DatabaseError: a migration failed (it was rolled back, earlier ones stay).
        """
        notices: list[str] = []
        done: list[Migration] = []
        per_migration: list[list[str]] = []
        handler = _collector(notices)
        self.conn.add_notice_handler(handler)
        try:
            while (migration := self._apply_next()) is not None:
                done.append(migration)
                per_migration.append(notices[:])
                notices.clear()
        finally:
            self.conn.remove_notice_handler(handler)
        version = done[-1].id if done else self.status().version
        # Every migration re-runs the grants, and the last one asks for all that is needed
        # now: the DBA statements of earlier ones are older versions of the same grants.
        *earlier, last = per_migration or [[]]
        kept = [n for lines in earlier for n in lines if not n.startswith(DBA_PREFIX)] + last
        return InstallResult(tuple(done), tuple(dict.fromkeys(kept)), version)

    def _apply_next(self) -> Migration | None:
        """In one transaction: lock, bootstrap, verify, record and apply one migration."""
        with self.conn.transaction():
            self.conn.execute(query("schema_lock"))
            if not self._table_exists():
                self._refuse_foreign_schema()
            self.conn.execute(query("schema_migrations_create"))
            status = self._status(self._verify(self._applied()))
            if not status.pending:
                return None
            migration = status.pending[0]
            logger.info("applying migration %s", migration.filename)
            params = {"id": migration.id, "name": migration.name, "checksum": migration.checksum}
            self.conn.execute(query("schema_migrations_insert"), params)
            self._run(migration)
        return migration

    def _run(self, migration: Migration) -> None:
        try:
            # No parameters: psycopg then sends the whole file as one simple-protocol batch.
            self.conn.execute(migration.sql.encode("utf-8"))
        except psycopg.Error as exc:
            cause = translate_error(exc)
            raise DatabaseError(
                f"pgflow migration {migration.filename} failed: {cause.message}",
                hint=cause.hint,
                sqlstate=exc.sqlstate,
                migration=migration.filename,
            ) from exc

    def _refuse_foreign_schema(self) -> None:
        """Refuse a ``pgflow`` schema with objects this installer did not record."""
        row = self.conn.execute(query("schema_foreign_objects")).fetchone()
        if row and row[0]:
            raise SchemaError(
                f"schema pgflow already holds {row[0]} object(s), but no pgflow.schema_migrations "
                "table: it was not installed by pgflow-py (perhaps by the TypeScript pgflow, "
                "or by running the schema files by hand)",
                hint="Install into another database; or, if that schema is disposable, "
                "`drop schema pgflow cascade` and run `pgflow install` again.",
            )

    def _table_exists(self) -> bool:
        row = self.conn.execute(query("schema_migrations_exists")).fetchone()
        return bool(row and row[0])

    def _applied(self) -> tuple[AppliedMigration, ...]:
        with self.conn.cursor(row_factory=dict_row) as cur:
            rows = cur.execute(query("schema_migrations_list")).fetchall()
        return tuple(AppliedMigration(**row) for row in rows)

    def _status(self, applied: tuple[AppliedMigration, ...]) -> SchemaStatus:
        done = {a.id for a in applied}
        pending = tuple(m for m in self.migrations if m.id not in done)
        latest = self.migrations[-1].id if self.migrations else 0
        return SchemaStatus(applied, pending, applied[-1].id if applied else None, latest)

    def _verify(self, applied: tuple[AppliedMigration, ...]) -> tuple[AppliedMigration, ...]:
        known = {m.id: m for m in self.migrations}
        for row in applied:
            migration = known.get(row.id)
            if migration is None:
                raise _newer_error(row, self.migrations)
            if migration.checksum != row.checksum:
                raise _checksum_error(row, migration)
        return applied


def _newer_error(row: AppliedMigration, ours: Sequence[Migration]) -> SchemaError:
    latest = f"{ours[-1].id:04d}" if ours else "none"
    return SchemaError(
        f"the database has pgflow migration {row.id:04d}_{row.name} "
        f"(applied {row.applied_at:%Y-%m-%d}), which this package does not know: the schema "
        f"is newer than this package (which ships migrations up to {latest})",
        hint="Upgrade pgflow-py to the version that installed this schema; "
        "never run an older installer against a newer schema.",
        version=row.id,
    )


def _checksum_error(row: AppliedMigration, migration: Migration) -> SchemaError:
    return SchemaError(
        f"pgflow migration {migration.filename} was applied with checksum {row.checksum[:12]}…, "
        f"but this package's file has {migration.checksum[:12]}…: the migration changed after "
        "it was applied",
        hint="Released migrations are immutable: restore the original file and add a new "
        "migration. For a throw-away development database, `drop schema pgflow cascade` and "
        "run `pgflow install` again.",
        migration=migration.filename,
    )


def _collector(lines: list[str]) -> Callable[[psycopg.errors.Diagnostic], None]:
    """A notice handler keeping messages raised by PL/pgSQL (and every WARNING).

    Utility statements' own notices ("schema ... already exists, skipping") carry no
    context and are only logged; a ``raise notice`` inside PL/pgSQL has a context line.
    """

    def handle(diag: psycopg.errors.Diagnostic) -> None:
        message = diag.message_primary or ""
        logger.debug("notice during install: %s", message)
        if diag.context or diag.severity_nonlocalized == "WARNING":
            lines.append(message + (f"\n{diag.message_hint}" if diag.message_hint else ""))

    return handle


def _connection(target: str | psycopg.Connection[Any]) -> psycopg.Connection[Any]:
    return connect(target) if isinstance(target, str) else target


def install(conninfo_or_connection: str | psycopg.Connection[Any]) -> InstallResult:
    """Install or upgrade the pgflow schema; see :class:`SchemaManager`.

    Args:
        conninfo_or_connection: a URL (a connection is opened and closed), or a connection.
    """
    if isinstance(conninfo_or_connection, str):
        with _connection(conninfo_or_connection) as conn:
            return SchemaManager(conn).install()
    return SchemaManager(conninfo_or_connection).install()


def status(conninfo_or_connection: str | psycopg.Connection[Any]) -> SchemaStatus:
    """Return the schema status; see :meth:`SchemaManager.status`."""
    if isinstance(conninfo_or_connection, str):
        with _connection(conninfo_or_connection) as conn:
            return SchemaManager(conn).status()
    return SchemaManager(conninfo_or_connection).status()
