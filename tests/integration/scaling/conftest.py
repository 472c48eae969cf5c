"""Fixtures of the scaling tests: a PgBouncer in front of the test server.

PgBouncer is Debian's ``pgbouncer`` (``.ci/run`` installs it); on a machine without it these
tests are skipped, saying so.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from pgflow.testing.pgbouncer import PgBouncer, find_pgbouncer, start_pgbouncer
from tests.integration.runtime import deploy

__all__ = ["bouncer", "deploy", "pooled_url"]


@pytest.fixture
def bouncer(db_url: str) -> Iterator[PgBouncer]:
    """PgBouncer in transaction pooling mode, 4 server connections per database."""
    if find_pgbouncer() is None:
        pytest.skip("pgbouncer is not installed (apt-get install pgbouncer; CI installs it)")
    with start_pgbouncer(db_url, pool_size=4) as running:
        yield running


@pytest.fixture
def pooled_url(bouncer: PgBouncer, db_url: str) -> str:
    """The test database, through PgBouncer."""
    return bouncer.url_for(db_url)
