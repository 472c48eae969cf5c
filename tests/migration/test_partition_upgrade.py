"""The upgrade to partitioned history (0005) keeps every row where it is and loses nothing.

The existing tables become the default partitions of the new partitioned tables: no row is
copied and no index rebuilt (their files stay the same). Rows whose month got a partition
at the upgrade move there; user grants on the tables follow to the new parents, and a user
view on the old table is named in a WARNING. Runs in flight finish under the new schema,
and new runs go to their month's partition.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from pgflow.db.schema import SchemaManager
from pgflow.migrations import migrations
from pgflow.testing import DatabaseFactory
from tests.migration.upgrade_harness import install_version

ROLE = "app_history_reader"
BEFORE_PARTITIONS = 4


@pytest.fixture
def old_url(pgflow_databases: DatabaseFactory) -> Iterator[str]:
    migrations.cache_clear()
    url = pgflow_databases.create(schema=False)
    install_version(url, BEFORE_PARTITIONS)
    try:
        yield url
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            if conn.execute("select 1 from pg_roles where rolname = %s", [ROLE]).fetchone():
                conn.execute(f"drop owned by {ROLE}".encode())
                conn.execute(f"drop role {ROLE}".encode())
        pgflow_databases.drop(url)


def _next_month_id(conn: psycopg.Connection[Any]) -> uuid.UUID:
    """A random-looking id that sorts into next month's range of UUIDv7 ids."""
    row = conn.execute(
        "select (left(encode(substring(int8send((extract(epoch from date_trunc('month', now(),"
        " 'UTC') + interval '1 month 3 days') * 1000)::bigint) from 3), 'hex'), 12)"
        " || '4abc8def0123456789ab')::uuid"
    ).fetchone()
    assert row is not None
    return uuid.UUID(str(row[0]))


def _start(conn: psycopg.Connection[Any], run_id: uuid.UUID | None = None) -> uuid.UUID:
    row = conn.execute(
        "select run_id from pgflow.start_flow('f', %s, %s)", [Jsonb({}), run_id]
    ).fetchone()
    assert row is not None
    return uuid.UUID(str(row[0]))


def _drain(conn: psycopg.Connection[Any]) -> int:
    done = 0
    while tasks := conn.execute(
        "select run_id, step_slug, task_index, attempt"
        " from pgflow.claim_tasks(array['f'], gen_random_uuid(), 50)"
    ).fetchall():
        for run_id, step_slug, task_index, attempt in tasks:
            conn.execute(
                "select pgflow.complete_task(%s, %s, %s, '1', %s)",
                [run_id, step_slug, task_index, attempt],
            )
            done += 1
    return done


def _home(conn: psycopg.Connection[Any], run_id: uuid.UUID) -> str:
    row = conn.execute(
        "select tableoid::regclass::text from pgflow.runs where run_id = %s", [run_id]
    ).fetchone()
    assert row is not None
    return str(row[0])


def test_the_old_tables_become_default_partitions_and_every_run_finishes(old_url: str) -> None:
    warnings: list[str] = []
    with psycopg.connect(old_url, autocommit=True) as conn:
        conn.execute("select pgflow.create_flow('f')")
        conn.execute("select pgflow.add_step('f', 'a')")
        conn.execute("select pgflow.add_step('f', 'b', array['a'])")
        done = _start(conn)
        _drain(conn)
        live = [_start(conn) for _ in range(3)]
        leased = conn.execute(  # a worker holds this lease across the upgrade
            "select run_id, step_slug, task_index, attempt"
            " from pgflow.claim_tasks(array['f'], gen_random_uuid(), 1)"
        ).fetchone()
        ahead = _start(conn, _next_month_id(conn))
        conn.execute(f"create role {ROLE} nologin".encode())
        conn.execute(f"grant select on pgflow.runs to {ROLE}".encode())
        conn.execute("create view public.app_runs as select run_id, status from pgflow.runs")
        files_before: dict[str, int] = dict(
            conn.execute(
                "select relname, relfilenode from pg_class where relnamespace ="
                " 'pgflow'::regnamespace and relname in ('runs', 'runs_pkey', 'step_tasks',"
                " 'step_tasks_ready', 'step_tasks_finished')"
            ).fetchall()
        )
        conn.add_notice_handler(lambda d: warnings.append(d.message_primary or ""))
        SchemaManager(conn).install()

    with psycopg.connect(old_url, autocommit=True) as conn:
        kinds: dict[str, str] = dict(
            conn.execute(
                "select relname, relkind from pg_class where relnamespace ="
                " 'pgflow'::regnamespace and relname in ('runs', 'step_states', 'step_tasks')"
            ).fetchall()
        )
        assert kinds == {"runs": "p", "step_states": "p", "step_tasks": "p"}
        files_after: dict[str, int] = dict(
            conn.execute(
                "select relname, relfilenode from pg_class where relnamespace ="
                " 'pgflow'::regnamespace and relname in ('runs_default', 'runs_default_pkey',"
                " 'step_tasks_default', 'step_tasks_default_ready',"
                " 'step_tasks_default_finished')"
            ).fetchall()
        )
        renamed = {name.replace("_default", ""): node for name, node in files_after.items()}
        assert renamed == files_before  # nothing copied or rebuilt

        assert {_home(conn, r) for r in [done, *live]} == {"pgflow.runs_default"}
        assert _home(conn, ahead).startswith("pgflow.runs_p")  # moved into its month
        conn.execute("select pgflow.complete_task(%s, %s, %s, '1', %s)", leased)
        assert _drain(conn) == 2 * 4 - 1  # 3 live runs and the moved one, two steps each
        statuses = conn.execute("select status, count(*) from pgflow.runs group by 1").fetchall()
        assert statuses == [("completed", 5)]
        new = _start(conn)
        assert _home(conn, new).startswith("pgflow.runs_p")

        assert conn.execute(
            "select has_table_privilege(%s, 'pgflow.runs', 'select')", [ROLE]
        ).fetchone() == (True,)
        assert any("view public.app_runs reads pgflow.runs_default" in w for w in warnings)


def test_the_upgrade_is_idempotent_and_builds_what_a_fresh_install_builds(
    old_url: str, db_url: str
) -> None:
    query = "select month, lower_run_id is null as open from pgflow.history_partitions()"
    with psycopg.connect(old_url, autocommit=True) as conn:
        SchemaManager(conn).install()
        conn.execute("select pgflow._partition_history()")  # a second run changes nothing
    with psycopg.connect(old_url, autocommit=True, row_factory=dict_row) as conn:
        upgraded = conn.execute(query).fetchall()
    with psycopg.connect(db_url, autocommit=True, row_factory=dict_row) as conn:
        fresh = conn.execute(query).fetchall()
    assert upgraded == fresh
