"""Fixtures of the sharding tests: a proxy server and three shard servers (PostgreSQL 15
with PL/Proxy, :mod:`tests.sharding_clusters`), built once per session; each test module
gets databases of its own on them."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.sharding_clusters import ShardedClusters, sharded_clusters


@pytest.fixture(scope="session")
def clusters() -> Iterator[ShardedClusters]:
    """The running proxy and shard servers (stopped and deleted after the session)."""
    with sharded_clusters(3) as running:
        yield running
