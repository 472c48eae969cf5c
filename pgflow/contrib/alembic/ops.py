"""Alembic operations for pgflow: ``op.pgflow_install()``, ``op.pgflow_apply_flow(sql, slug)``,
``op.pgflow_remove_flow(slug)`` and ``op.pgflow_uninstall()``.

Importing this module registers them on :class:`alembic.operations.Operations` (alembic's
``register_operation`` / ``implementation_for`` registries). Every implementation goes
through ``operations.execute``, so the same revision works online and offline
(``alembic upgrade --sql``).

``operations.execute(str)`` wraps the text in SQLAlchemy ``text()``, where ``:word`` is a
bind parameter: online it fails, offline it is silently replaced (``'{"ok":true}'`` would
print as ``'{"ok"NULL}'``). :func:`escape_colons` escapes every colon, which ``text()``
turns back into a plain colon (STYLE, "Alembic: what we verified").
"""

from __future__ import annotations

import logging
from functools import cache
from importlib.resources import files
from typing import Any, LiteralString

from alembic.operations import MigrateOperation, Operations
from psycopg import sql

from pgflow.errors import SchemaError
from pgflow.migrations import Migration, migrations
from pgflow.sql import parse_queries, query

__all__ = [
    "ApplyFlowOp",
    "InstallOp",
    "RemoveFlowOp",
    "UninstallOp",
    "escape_colons",
    "render_query",
    "revision_id",
]

logger = logging.getLogger(__name__)


def escape_colons(text: str) -> str:
    """Escape ``:`` so SQLAlchemy ``text()`` keeps it literal (``::jsonb``, ``"a":1``)."""
    return text.replace(":", r"\:")


def revision_id(migration_id: int) -> str:
    """The Alembic revision id of a packaged pgflow migration (``pgflow_0001``)."""
    return f"pgflow_{migration_id:04d}"


@cache
def _queries() -> dict[str, LiteralString]:
    text = (files("pgflow.contrib.alembic") / "queries.sql").read_text(encoding="utf-8")
    return parse_queries(text, source="pgflow/contrib/alembic/queries.sql")


def render_query(query_name: str, /, **values: Any) -> str:
    """Return a named query of ``queries.sql`` with ``values`` inlined as quoted literals.

    Offline scripts cannot carry bound parameters, so values are quoted by psycopg
    (``sql.Literal``) instead; nothing is concatenated by hand.
    """
    template = sql.SQL(_queries()[query_name])
    return template.format(**{k: sql.Literal(v) for k, v in values.items()}).as_string(None)


def _execute(operations: Operations, text: str) -> None:
    """Execute SQL text verbatim (colons escaped; a trailing ``;`` dropped, Alembic adds one)."""
    text = text.strip()
    operations.execute(escape_colons(text.removesuffix(";")))


def _scalar(operations: Operations, text: str) -> Any:
    from sqlalchemy import text as sql_text

    return operations.get_bind().execute(sql_text(escape_colons(text))).scalar()


@Operations.register_operation("pgflow_install")
class InstallOp(MigrateOperation):
    """Apply packaged pgflow migrations, recording them as ``pgflow install`` does.

    Args:
        migration: the id of one migration (``1`` for ``0001_initial.sql``); ``None``
            applies every packaged migration in order.
    """

    def __init__(self, migration: int | None = None) -> None:
        self.migration = migration

    @classmethod
    def pgflow_install(cls, operations: Operations, migration: int | None = None) -> None:
        """Apply the pgflow schema migration ``migration`` (default: all of them)."""
        operations.invoke(cls(migration))

    def selected(self) -> tuple[Migration, ...]:
        """The migrations this operation applies, read from the package at upgrade time."""
        found = migrations()
        if self.migration is None:
            return found
        chosen = tuple(m for m in found if m.id == self.migration)
        if not chosen:
            raise SchemaError(
                f"this pgflow package has no migration {self.migration:04d}",
                hint="Upgrade pgflow-py to the version that shipped this Alembic revision.",
            )
        return chosen

    def reverse(self) -> MigrateOperation:
        """Installing is undone by removing the schema."""
        return UninstallOp()


@Operations.register_operation("pgflow_uninstall")
class UninstallOp(MigrateOperation):
    """Drop the pgflow schema with everything in it (flows, runs, functions)."""

    @classmethod
    def pgflow_uninstall(cls, operations: Operations) -> None:
        """Drop schema ``pgflow`` (cascade)."""
        operations.invoke(cls())

    def reverse(self) -> MigrateOperation:
        """Removing the schema is undone by installing it."""
        return InstallOp()


@Operations.register_operation("pgflow_apply_flow")
class ApplyFlowOp(MigrateOperation):
    """Apply one flow's compiled SQL (``pgflow compile`` output).

    Applying the same shape again is a no-op; a different shape under an existing slug
    fails before changing anything (SQLSTATE PGF04), which aborts the migration.

    Args:
        sql: the compiled SQL, frozen in the revision file.
        slug: the flow's slug (used by the downgrade and by readers of the revision).
    """

    def __init__(self, sql: str, slug: str) -> None:
        self.sql = sql
        self.slug = slug

    @classmethod
    def pgflow_apply_flow(cls, operations: Operations, sql: str, slug: str) -> None:
        """Apply the compiled SQL of flow ``slug``."""
        operations.invoke(cls(sql, slug))

    def reverse(self) -> MigrateOperation:
        """Applying a flow is undone by removing it."""
        return RemoveFlowOp(self.slug, self.sql)


@Operations.register_operation("pgflow_remove_flow")
class RemoveFlowOp(MigrateOperation):
    """Remove a flow with its runs (``pgflow.delete_flow_and_data``).

    Args:
        slug: the flow to remove; an unknown slug is a no-op.
        sql: the flow's compiled SQL, when known, so the removal can be reversed.
    """

    def __init__(self, slug: str, sql: str | None = None) -> None:
        self.slug = slug
        self.sql = sql

    @classmethod
    def pgflow_remove_flow(cls, operations: Operations, slug: str) -> None:
        """Remove flow ``slug`` and all its runs."""
        operations.invoke(cls(slug))

    def reverse(self) -> MigrateOperation:
        """Re-apply the flow's SQL (only possible when it is known)."""
        if self.sql is None:
            raise ValueError(f"cannot reverse the removal of {self.slug!r}: its SQL is unknown")
        return ApplyFlowOp(self.sql, self.slug)


@Operations.implementation_for(InstallOp)
def _install(operations: Operations, operation: InstallOp) -> None:
    for migration in operation.selected():
        _apply_migration(operations, migration)


def _apply_migration(operations: Operations, migration: Migration) -> None:
    _execute(operations, query("schema_lock"))
    _execute(operations, query("schema_migrations_create"))
    if operations.migration_context.as_sql:
        guard = {"id": migration.id, "filename": migration.filename}
        revision = revision_id(migration.id)
        _execute(operations, render_query("migration_guard", revision=revision, **guard))
    elif _already_applied(operations, migration):
        logger.info("pgflow migration %s is already applied; skipping", migration.filename)
        return
    record = {"id": migration.id, "name": migration.name, "checksum": migration.checksum}
    _execute(operations, render_query("migration_record", **record))
    _execute(operations, migration.sql)


def _already_applied(operations: Operations, migration: Migration) -> bool:
    recorded = _scalar(operations, render_query("migration_recorded", id=migration.id))
    if recorded is None:
        return False
    if recorded != migration.checksum:
        raise SchemaError(
            f"pgflow migration {migration.filename} was applied with checksum "
            f"{str(recorded)[:12]}…, but this package's file has {migration.checksum[:12]}…",
            hint="Released migrations are immutable: install the pgflow-py version that "
            "applied it, or (development only) drop schema pgflow and upgrade again.",
            migration=migration.filename,
        )
    return True


@Operations.implementation_for(UninstallOp)
def _uninstall(operations: Operations, operation: UninstallOp) -> None:
    _execute(operations, render_query("uninstall"))


@Operations.implementation_for(ApplyFlowOp)
def _apply_flow(operations: Operations, operation: ApplyFlowOp) -> None:
    logger.info("applying pgflow flow %s", operation.slug)
    _execute(operations, operation.sql)


@Operations.implementation_for(RemoveFlowOp)
def _remove_flow(operations: Operations, operation: RemoveFlowOp) -> None:
    logger.info("removing pgflow flow %s and its runs", operation.slug)
    _execute(operations, render_query("remove_flow", flow_slug=operation.slug))
