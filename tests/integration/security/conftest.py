"""Login roles for the security tests, granted the pgflow roles and dropped afterwards.

Roles are cluster-wide, so each test's login roles get unique names and are dropped at
teardown (the per-test database is dropped by ``db_url`` after that).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import psycopg
import pytest
from psycopg import sql

from pgflow.testing import with_database

Login = Callable[..., str]


@pytest.fixture
def login(db_url: str) -> Iterator[Login]:
    """``login("pgflow_worker")`` creates a login role in that role; returns its URL."""
    created: list[str] = []

    def make(*member_of: str) -> str:
        name = f"pgflow_test_{uuid.uuid4().hex[:10]}"
        statement = sql.SQL("create role {} login").format(sql.Identifier(name))
        if member_of:
            statement += sql.SQL(" in role {}").format(
                sql.SQL(", ").join(sql.Identifier(r) for r in member_of)
            )
        with psycopg.connect(db_url, autocommit=True) as conn:
            conn.execute(statement)
        created.append(name)
        return psycopg.conninfo.make_conninfo(with_database(db_url, _dbname(db_url)), user=name)

    yield make
    with psycopg.connect(db_url, autocommit=True) as conn:
        for name in created:
            conn.execute(
                sql.SQL(
                    "select pg_terminate_backend(pid) from pg_stat_activity where usename = {}"
                ).format(sql.Literal(name))
            )
            conn.execute(sql.SQL("drop owned by {}").format(sql.Identifier(name)))
            conn.execute(sql.SQL("drop role {}").format(sql.Identifier(name)))


def _dbname(url: str) -> str:
    return str(psycopg.conninfo.conninfo_to_dict(url)["dbname"])
