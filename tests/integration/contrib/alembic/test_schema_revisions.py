"""The pgflow schema as Alembic revisions (branch ``pgflow``) agrees with `pgflow install`.

Upgrades start from every released version older than the packaged head, with runs in
flight (the harness of ``tests/migration``), so each new migration's revision is checked
the same way as ``0002``.
"""

from __future__ import annotations

import uuid

import psycopg
import pytest
from alembic import command
from alembic.util import CommandError

from pgflow.contrib.alembic import revision_id
from pgflow.contrib.alembic.revision import write_revision
from pgflow.db.schema import install
from pgflow.loader import load_flows
from pgflow.migrations import migrations
from tests.migration.upgrade_harness import (
    OldWorker,
    Task,
    deploy_as_released,
    from_versions,
    install_version,
)
from tests.migration.upgrade_scenario import chain, lease

from .conftest import AlembicProject, pgflow_head
from .flows import GREET

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
    assert project.alembic_versions() == {pgflow_head()}


def test_upgrade_on_a_database_installed_by_pgflow_install_applies_nothing(
    installed_project: AlembicProject,
) -> None:
    before = installed_project.query(
        "select id, checksum, applied_at from pgflow.schema_migrations"
    )

    installed_project.upgrade("heads")

    after = installed_project.query("select id, checksum, applied_at from pgflow.schema_migrations")
    assert after == before
    assert installed_project.alembic_versions() == {pgflow_head()}


def test_pgflow_install_after_the_schema_revisions_is_a_no_op(project: AlembicProject) -> None:
    project.upgrade("heads")

    result = install(project.db_url)

    assert result.applied == ()
    assert result.version == migrations()[-1].id


def test_the_removal_the_refusal_describes_drops_the_schema(project: AlembicProject) -> None:
    flows = load_flows(str(project.flows_file("greet_flows", GREET)))
    write_revision(flows, project.ini, rev_id="f1")
    project.upgrade("heads")

    project.downgrade("f1@base")  # "downgrade your own revisions that depend on it"
    command.stamp(project.config(), "pgflow_0001")
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


def test_downgrading_a_later_schema_revision_is_refused(project: AlembicProject) -> None:
    project.upgrade("heads")
    before = project.query(MIGRATION_ROWS)

    with pytest.raises(CommandError) as refused:
        project.downgrade("pgflow@-1")

    assert "cannot be undone" in str(refused.value)
    assert "alembic stamp pgflow_0001" in str(refused.value)
    assert project.query(MIGRATION_ROWS) == before
    assert project.alembic_versions() == {pgflow_head()}


def leave_runs(url: str) -> tuple[OldWorker, Task, uuid.UUID]:
    """Deploy two flows; leave a task leased to a worker still running, and a queued run."""
    conn = psycopg.connect(url, autocommit=True)
    deploy_as_released(conn, [chain, lease])
    old = OldWorker(conn)
    leased = old.claim_one("upgrade_chain", old.start("upgrade_chain", 1))
    return old, leased, old.start("upgrade_lease", 2)


def finish_runs(old: OldWorker, leased: Task, queued: uuid.UUID) -> list[tuple[object, ...]]:
    """The lease is reported late, then every remaining task runs; return status and output."""
    assert old.complete(leased, 2)["status"] == "completed"
    old.complete(old.claim_one("upgrade_lease", queued), 6)
    old.complete(old.claim_one("upgrade_chain", leased.run_id), 20)
    statement = "select status, output from pgflow.runs where run_id = any(%s) order by input"
    return old.conn.execute(statement, [[leased.run_id, queued]]).fetchall()


@pytest.mark.parametrize("from_version", from_versions(), ids=lambda v: f"from_{v:04d}")
def test_alembic_upgrade_with_runs_in_flight_is_recognised_by_pgflow_install(
    project: AlembicProject, from_version: int
) -> None:
    project.upgrade(revision_id(from_version))
    old, leased, queued = leave_runs(project.db_url)

    project.upgrade("heads")

    with old.conn:
        assert finish_runs(old, leased, queued) == [
            ("completed", {"second": 20}),
            ("completed", {"work": 6}),
        ]
    assert rows(project.db_url, MIGRATION_ROWS) == [
        (m.id, m.name, m.checksum) for m in migrations()
    ]
    assert project.alembic_versions() == {pgflow_head()}
    assert install(project.db_url).applied == ()


@pytest.mark.parametrize("from_version", from_versions(), ids=lambda v: f"from_{v:04d}")
def test_alembic_upgrade_over_an_older_pgflow_install_applies_only_the_rest(
    project: AlembicProject, from_version: int
) -> None:
    install_version(project.db_url, from_version)
    before = project.query("select id, applied_at from pgflow.schema_migrations order by id")

    project.upgrade("heads")

    after = project.query("select id, applied_at from pgflow.schema_migrations order by id")
    assert after[:from_version] == before
    assert [row[0] for row in after] == [m.id for m in migrations()]
    assert project.alembic_versions() == {pgflow_head()}


@pytest.mark.parametrize("from_version", from_versions(), ids=lambda v: f"from_{v:04d}")
def test_alembic_records_migrations_that_pgflow_install_applied(
    project: AlembicProject, from_version: int
) -> None:
    project.upgrade(revision_id(from_version))
    assert [m.id for m in install(project.db_url).applied] == [
        m.id for m in migrations()[from_version:]
    ]
    before = project.query("select id, applied_at from pgflow.schema_migrations order by id")

    project.upgrade("heads")

    assert (
        project.query("select id, applied_at from pgflow.schema_migrations order by id") == before
    )
    assert project.alembic_versions() == {pgflow_head()}


@pytest.mark.parametrize("from_version", from_versions(), ids=lambda v: f"from_{v:04d}")
def test_offline_script_from_an_older_revision_applies_the_rest(
    project: AlembicProject, db_url: str, from_version: int
) -> None:
    project.upgrade(revision_id(from_version))
    script = project.offline(f"{revision_id(from_version)}:heads")

    with psycopg.connect(project.db_url, autocommit=True) as conn:
        conn.execute(script.encode())

    assert rows(project.db_url, MIGRATION_ROWS) == rows(db_url, MIGRATION_ROWS)
    assert rows(project.db_url, SCHEMA_OBJECTS) == rows(db_url, SCHEMA_OBJECTS)
    assert project.alembic_versions() == {pgflow_head()}
