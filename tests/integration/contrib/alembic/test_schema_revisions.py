"""The pgflow schema as Alembic revisions (branch ``pgflow``) agrees with `pgflow install`."""

from __future__ import annotations

import psycopg
import pytest

from pgflow.db.schema import install
from pgflow.migrations import migrations

from .conftest import AlembicProject

MIGRATION_ROWS = "select id, name, checksum from pgflow.schema_migrations order by id"
SCHEMA_OBJECTS = """
select 'function ' || p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ')'
from pg_proc p where p.pronamespace = 'pgflow'::regnamespace
union all
select 'relation ' || c.relname || ' ' || c.relkind::text
from pg_class c where c.relnamespace = 'pgflow'::regnamespace
order by 1
"""


def rows(url: str, query: str) -> list[tuple[object, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute(query.encode()).fetchall()


def test_schema_revisions_record_the_same_migrations_as_pgflow_install(
    project: AlembicProject, db_url: str
) -> None:
    project.upgrade("pgflow@head")

    expected = [(m.id, m.name, m.checksum) for m in migrations()]
    assert rows(project.db_url, MIGRATION_ROWS) == expected
    assert rows(db_url, MIGRATION_ROWS) == expected  # db_url was installed by the installer
    assert rows(project.db_url, SCHEMA_OBJECTS) == rows(db_url, SCHEMA_OBJECTS)
    assert project.alembic_versions() == {"pgflow_0001"}


def test_upgrade_on_a_database_installed_by_pgflow_install_applies_nothing(
    installed_project: AlembicProject,
) -> None:
    before = installed_project.query(
        "select id, checksum, applied_at from pgflow.schema_migrations"
    )

    installed_project.upgrade("heads")

    after = installed_project.query("select id, checksum, applied_at from pgflow.schema_migrations")
    assert after == before
    assert installed_project.alembic_versions() == {"pgflow_0001"}


def test_pgflow_install_after_the_schema_revisions_is_a_no_op(project: AlembicProject) -> None:
    project.upgrade("heads")

    result = install(project.db_url)

    assert result.applied == ()
    assert result.version == migrations()[-1].id


def test_downgrading_the_base_revision_drops_the_schema(project: AlembicProject) -> None:
    project.upgrade("heads")

    project.downgrade("pgflow@base")

    assert project.query("select to_regnamespace('pgflow')") == [(None,)]
    assert project.alembic_versions() == set()


def test_offline_schema_script_installs_like_pgflow_install(
    project: AlembicProject, db_url: str
) -> None:
    script = project.offline("pgflow@head")

    with psycopg.connect(project.db_url, autocommit=True) as conn:
        conn.execute(script.encode())

    assert rows(project.db_url, MIGRATION_ROWS) == rows(db_url, MIGRATION_ROWS)
    assert rows(project.db_url, SCHEMA_OBJECTS) == rows(db_url, SCHEMA_OBJECTS)


def test_offline_schema_script_refuses_a_database_already_installed(
    installed_project: AlembicProject,
) -> None:
    script = installed_project.offline("pgflow@head")

    with (
        psycopg.connect(installed_project.db_url, autocommit=True) as conn,
        pytest.raises(psycopg.errors.RaiseException) as raised,
    ):
        conn.execute(script.encode())

    assert "pgflow migration 0001_initial.sql is already applied" in str(raised.value)
    assert "alembic stamp pgflow_0001" in (raised.value.diag.message_hint or "")
