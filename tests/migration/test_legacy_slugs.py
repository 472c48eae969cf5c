"""Flows whose slugs the older rule allowed survive an upgrade to the pgflow 0.17 rule.

Released schemas accepted a leading or trailing `_` and step slugs that differ only in
letter case. The new rule applies to flows and steps defined after the upgrade; the table
constraints (``pgflow.is_valid_slug``) are unchanged, so existing rows stay valid, their
compiled SQL re-applies, and they start.
"""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from pgflow.migrations import migrations
from pgflow.testing import DatabaseFactory
from tests.migration.upgrade_harness import from_versions, install_version, upgrade

LEGACY_SQL = """
select pgflow.create_flow('_legacy_', timeout => 30);
select pgflow.add_step('_legacy_', '_first');
select pgflow.add_step('_legacy_', 'Second', array['_first']);
select pgflow.add_step('_legacy_', 'second', array['_first'], timeout => 5);
"""


# 0003 brought the new rule: only the releases before it could hold such slugs.
NEW_SLUG_RULE = 3


@pytest.fixture(
    params=[v for v in from_versions() if v < NEW_SLUG_RULE], ids=lambda v: f"from_{v:04d}"
)
def legacy_url(request: pytest.FixtureRequest, pgflow_databases: DatabaseFactory) -> Iterator[str]:
    migrations.cache_clear()
    url = pgflow_databases.create(schema=False)
    try:
        install_version(url, request.param)
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(LEGACY_SQL)  # the old release accepts these slugs
        upgrade(url)
        yield url
    finally:
        pgflow_databases.drop(url)


def test_a_legacy_flow_re_applies_and_starts_after_the_upgrade(legacy_url: str) -> None:
    with psycopg.connect(legacy_url, autocommit=True) as conn:
        conn.execute(LEGACY_SQL)  # the same definition again: a no-op
        run = conn.execute(
            "select status, remaining_steps from pgflow.start_flow('_legacy_', '{}')"
        ).fetchone()
        assert run == ("started", 3)
        with pytest.raises(psycopg.Error) as caught:
            conn.execute("select pgflow.add_step('_legacy_', 'SECOND', array['_first'])")
        assert caught.value.sqlstate == "PGF05"  # a new step follows the new rule
        with pytest.raises(psycopg.Error) as caught:
            conn.execute("select pgflow.create_flow('_another')")
        assert caught.value.sqlstate == "PGF01"
