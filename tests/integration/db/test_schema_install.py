"""The installer: fresh install, idempotence, races, refusals, failures and notices."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg import sql

from pgflow.db.schema import InstallResult, SchemaManager, install, status
from pgflow.errors import DatabaseError, PgflowError, SchemaError
from pgflow.migrations import Migration, checksum, migrations
from pgflow.testing import DatabaseFactory, DatabaseServer


def make(id_: int, name: str, text: str) -> Migration:
    return Migration(id_, name, text, checksum(text))


def one_value(url: str, query: str) -> Any:
    with psycopg.connect(url) as conn:
        row = conn.execute(query.encode()).fetchone()
        return row[0] if row else None


def applied_ids(url: str) -> list[int]:
    with psycopg.connect(url) as conn:
        return [r[0] for r in conn.execute("select id from pgflow.schema_migrations order by id")]


def test_fresh_install_applies_every_migration(empty_db_url: str) -> None:
    result = install(empty_db_url)
    assert result.applied == migrations()
    assert result.version == migrations()[-1].id
    assert applied_ids(empty_db_url) == [m.id for m in migrations()]
    signature = "pgflow.start_flow(text, jsonb, uuid, jsonb, int)"
    assert one_value(empty_db_url, f"select to_regprocedure('{signature}')")
    after = status(empty_db_url)
    assert after.up_to_date and after.version == after.latest
    assert [a.checksum for a in after.applied] == [m.checksum for m in migrations()]


def test_second_install_is_a_no_op(empty_db_url: str) -> None:
    install(empty_db_url)
    again = install(empty_db_url)
    assert again == InstallResult((), (), migrations()[-1].id)
    assert applied_ids(empty_db_url) == [m.id for m in migrations()]


def test_status_of_an_empty_database_changes_nothing(empty_db_url: str) -> None:
    before = status(empty_db_url)
    assert before.version is None and before.applied == ()
    assert before.pending == migrations() and not before.up_to_date
    assert one_value(empty_db_url, "select to_regnamespace('pgflow')") is None


def test_db_url_fixture_database_is_already_installed(db_url: str) -> None:
    assert status(db_url).up_to_date


def race(url: str, runner: Any, n: int = 2) -> list[Any]:
    barrier = threading.Barrier(n)
    results: list[Any] = [None] * n

    def work(i: int) -> None:
        with psycopg.connect(url, autocommit=True) as conn:
            barrier.wait()
            try:
                results[i] = runner(conn)
            except (psycopg.Error, PgflowError) as exc:  # asserted on by the caller
                results[i] = exc

    threads = [threading.Thread(target=work, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


def test_racing_installers_apply_each_migration_once(empty_db_url: str) -> None:
    slow = [
        make(1, "first", "create schema if not exists pgflow; select pg_sleep(0.2);"),
        make(2, "second", "create table pgflow.t2 (id int); select pg_sleep(0.2);"),
        make(3, "third", "create table pgflow.t3 (id int);"),
    ]
    results = race(empty_db_url, lambda conn: SchemaManager(conn, slow).install(), n=3)
    assert all(isinstance(r, InstallResult) for r in results), results
    applied = sorted(m.id for r in results for m in r.applied)
    assert applied == [1, 2, 3]
    assert applied_ids(empty_db_url) == [1, 2, 3]


def test_racing_installers_with_the_packaged_migrations(empty_db_url: str) -> None:
    results = race(empty_db_url, install)
    assert all(isinstance(r, InstallResult) for r in results), results
    # each migration is applied exactly once, by whichever installer gets to it first
    applied = sorted(m.id for r in results for m in r.applied)
    assert applied == [m.id for m in migrations()]
    assert status(empty_db_url).up_to_date


def test_a_newer_database_is_refused(db_url: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("insert into pgflow.schema_migrations values (999, 'future', 'x', now())")
        with pytest.raises(SchemaError) as exc:
            SchemaManager(conn).install()
    assert "migration 0999_future" in exc.value.message
    assert "newer than this package" in exc.value.message
    assert exc.value.hint and "Upgrade pgflow-py" in exc.value.hint
    with pytest.raises(SchemaError, match="0999_future"):
        status(db_url)


def test_a_changed_migration_is_refused(db_url: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("update pgflow.schema_migrations set checksum = repeat('0', 64) where id = 1")
    with pytest.raises(SchemaError) as exc:
        install(db_url)
    assert "0001_initial.sql was applied with checksum 000000000000" in exc.value.message
    assert exc.value.hint and "immutable" in exc.value.hint


def test_a_schema_pgflow_not_installed_by_us_is_refused(empty_db_url: str) -> None:
    with psycopg.connect(empty_db_url, autocommit=True) as conn:
        conn.execute("create schema pgflow; create table pgflow.flows (flow_slug text)")
    with pytest.raises(SchemaError) as exc:
        install(empty_db_url)
    assert "schema pgflow already holds 1 object(s)" in exc.value.message
    assert exc.value.hint and "drop schema pgflow cascade" in exc.value.hint
    assert one_value(empty_db_url, "select to_regclass('pgflow.schema_migrations')") is None


def test_an_empty_schema_pgflow_is_fine(empty_db_url: str) -> None:
    with psycopg.connect(empty_db_url, autocommit=True) as conn:
        conn.execute("create schema pgflow")
    assert install(empty_db_url).applied == migrations()


def test_a_failing_migration_rolls_back_alone(empty_db_url: str) -> None:
    steps = [
        make(1, "good", "create schema if not exists pgflow; create table pgflow.good (id int);"),
        make(2, "bad", "create table pgflow.half (id int); select 1 / 0;"),
    ]
    with psycopg.connect(empty_db_url, autocommit=True) as conn:
        with pytest.raises(DatabaseError) as exc:
            SchemaManager(conn, steps).install()
        assert exc.value.message == "pgflow migration 0002_bad.sql failed: division by zero"
        assert SchemaManager(conn, steps).status().version == 1
    assert one_value(empty_db_url, "select to_regclass('pgflow.good')") is not None
    assert one_value(empty_db_url, "select to_regclass('pgflow.half')") is None


def test_plpgsql_notices_are_returned_and_utility_chatter_is_not(empty_db_url: str) -> None:
    text = (
        "create schema if not exists pgflow;\n"
        "drop table if exists pgflow.nothing_here;\n"
        "do $$ begin raise notice 'pgflow: ask a DBA to run: %;', 'create role x'; end $$;\n"
        "do $$ begin raise warning 'careful'; end $$;\n"
    )
    with psycopg.connect(empty_db_url, autocommit=True) as conn:
        result = SchemaManager(conn, [make(1, "chatty", text)]).install()
    assert result.notices == ("pgflow: ask a DBA to run: create role x;", "careful")


def test_install_joins_the_callers_transaction(empty_db_url: str) -> None:
    with psycopg.connect(empty_db_url) as conn:  # not autocommit
        conn.execute("select 1")  # the caller's transaction is now open
        assert install(conn).version == migrations()[-1].id
        conn.rollback()
        assert status(conn).version is None


@pytest.fixture
def owned_database(
    pgflow_server: DatabaseServer, pgflow_databases: DatabaseFactory
) -> Iterator[tuple[str, str]]:
    """A database owned by a fresh role without CREATEROLE/superuser; yields (url, role)."""
    pgflow_databases.template()  # the shared pgflow roles exist once any install ran
    role, name = f"owner_{uuid.uuid4().hex[:8]}", f"owned_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(pgflow_server.admin_url, autocommit=True) as admin:
        admin.execute(sql.SQL("create role {} nologin").format(sql.Identifier(role)))
        admin.execute(
            sql.SQL("create database {} owner {}").format(
                sql.Identifier(name), sql.Identifier(role)
            )
        )
    yield pgflow_server.url_for(name), role
    with psycopg.connect(pgflow_server.admin_url, autocommit=True) as admin:
        admin.execute(sql.SQL("drop database {} with (force)").format(sql.Identifier(name)))
        admin.execute(sql.SQL("drop role {}").format(sql.Identifier(role)))


def test_installs_as_a_non_superuser_database_owner(owned_database: tuple[str, str]) -> None:
    url, role = owned_database
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql.SQL("set role {}").format(sql.Identifier(role)))
        result = SchemaManager(conn).install()
        assert result.version == migrations()[-1].id
        owner = conn.execute(
            "select nspowner::regrole::text from pg_namespace where nspname = 'pgflow'"
        )
        assert owner.fetchone() == (role,)
