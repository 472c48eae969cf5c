"""Grants a user gave survive an upgrade that changes a function's signature.

Applications grant EXECUTE on ``pgflow.start_flow`` (and operators on ``pgflow.prune``) to
their own roles, as docs/security.md describes. An upgrade that replaces such a function
with a new signature must give the grant back on the new one; pgflow's own roles are
granted by the schema files anyway.
"""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest
from psycopg import sql

from pgflow.migrations import migrations
from pgflow.testing import DatabaseFactory
from tests.migration.upgrade_harness import from_versions, install_version, upgrade

ROLE = "app_starter_upgrade"
# Without an argument list: whatever signature the installed release has.
GRANTS = """
grant usage on schema pgflow to {role};
grant execute on function pgflow.start_flow to {role};
grant execute on function pgflow.prune to {role};
"""
CAN_EXECUTE = """
select p.proname, has_function_privilege(%(role)s, p.oid, 'execute') as allowed
from pg_proc p
where p.pronamespace = 'pgflow'::regnamespace
  and p.proname in ('start_flow', 'prune', 'claim_tasks', 'cancel_run')
order by p.proname
"""


@pytest.fixture(params=from_versions(), ids=lambda v: f"from_{v:04d}")
def upgraded_url(
    request: pytest.FixtureRequest, pgflow_databases: DatabaseFactory
) -> Iterator[str]:
    migrations.cache_clear()
    url = pgflow_databases.create(schema=False)
    try:
        install_version(url, request.param)
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f"drop role if exists {ROLE}".encode())
            conn.execute(f"create role {ROLE} nologin".encode())
            conn.execute(sql.SQL(GRANTS).format(role=sql.Identifier(ROLE)))
        upgrade(url)
        yield url
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f"drop owned by {ROLE}".encode())
            conn.execute(f"drop role if exists {ROLE}".encode())
        pgflow_databases.drop(url)


def test_a_users_grant_follows_the_function_to_its_new_signature(upgraded_url: str) -> None:
    with psycopg.connect(upgraded_url, autocommit=True) as conn:
        rows = conn.execute(CAN_EXECUTE, {"role": ROLE}).fetchall()
    assert rows == [
        ("cancel_run", False),  # never granted: nothing is granted beyond what the user gave
        ("claim_tasks", False),
        ("prune", True),
        ("start_flow", True),
    ]
