"""A proxy server and N shard servers for the sharding tests (docs/sharding.md).

::

    with sharded_clusters(3) as setup:
        proxy_url, shard_urls = setup.fresh("t1")     # new databases, installed
        setup.shards[1].kill()                          # SIGKILL, like losing the host
        setup.shards[1].start()                         # crash recovery, back on its port

Every server is its own PostgreSQL cluster built from the system PostgreSQL 15
(``/usr/lib/postgresql/15/bin``): Debian's ``postgresql-15-plproxy`` is built for it, and
``.ci/run`` installs both. ``initdb`` runs once; the other clusters are copies of that
data directory (``cp -a``), each then given its own port and socket. Like
:mod:`tests.replication` (whose :class:`~tests.replication.Cluster` this reuses), they
listen on 127.0.0.1, run without ``fsync``, run as ``embedded_postgres`` when the tests
run as root, and are stopped and deleted on exit.

Without PostgreSQL 15 and PL/Proxy the tests are skipped, except in CI (``CI`` set),
where they fail.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from pathlib import Path

import pytest

from pgflow.db import embedded
from pgflow.sharding import install_proxy
from tests.replication import _SETTINGS, _USER, Cluster, _make_root

__all__ = ["PG15_BIN", "ShardedClusters", "plproxy_or_skip", "sharded_clusters"]

PG15_BIN = Path("/usr/lib/postgresql/15/bin")
PLPROXY = Path("/usr/share/postgresql/15/extension/plproxy.control")


def plproxy_or_skip() -> None:
    """Skip (fail in CI) when the system PostgreSQL 15 or its PL/Proxy is missing."""
    if (PG15_BIN / "initdb").exists() and PLPROXY.exists():
        return
    message = (
        "PostgreSQL 15 with PL/Proxy is not installed "
        "(apt-get install postgresql-15 postgresql-15-plproxy; .ci/run installs them)"
    )
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


class SystemCluster(Cluster):
    """A :class:`~tests.replication.Cluster` run by the system PostgreSQL 15."""

    def run(self, program: str, *args: str) -> str:
        command = [str(PG15_BIN / program), *args]
        try:
            done = subprocess.run(
                command, user=_USER, capture_output=True, text=True, check=True, timeout=120
            )
        except subprocess.CalledProcessError as exc:
            raise AssertionError(f"{program} failed: {exc.stderr}\n{self.log()[-3000:]}") from exc
        return done.stdout


class ShardedClusters:
    """The running servers: ``proxy`` and ``shards`` (see the module docstring)."""

    def __init__(self, proxy: SystemCluster, shards: list[SystemCluster]) -> None:
        self.proxy = proxy
        self.shards = shards

    def fresh(self, name: str | None = None) -> tuple[str, list[str]]:
        """New, empty databases (one on each shard server, one on the proxy's), with the
        pgflow schema on the shards and the proxy installed in front of them."""
        db = name or f"t_{uuid.uuid4().hex[:8]}"
        for cluster in (self.proxy, *self.shards):
            cluster.execute(f"create database {db}")
        shard_urls = [shard.url(db) for shard in self.shards]
        install_proxy(self.proxy.url(db), shard_urls)
        return self.proxy.url(db), shard_urls


@contextmanager
def sharded_clusters(count: int = 3) -> Iterator[ShardedClusters]:
    """Start a proxy server and ``count`` shard servers; stop and delete them on exit."""
    plproxy_or_skip()
    if _USER is not None:  # as root the servers run as this user; the wheel makes it
        embedded.embedded_module().utils.ensure_user_exists(_USER)
    root = _make_root()
    template = SystemCluster(root, "template")
    clusters = [
        SystemCluster(root, name) for name in ["proxy", *(f"shard{i}" for i in range(count))]
    ]
    try:
        template.run("initdb", "-D", str(template.pgdata), "-U", "postgres", "--auth=trust",
                     "--encoding=utf8", "--no-sync")  # fmt: skip
        for cluster in clusters:
            subprocess.run(["cp", "-a", str(template.pgdata), str(cluster.pgdata)], check=True)
            cluster.configure(**_SETTINGS, port=str(cluster.port),
                              unix_socket_directories=f"'{cluster.pgdata}'")  # fmt: skip
        with ThreadPoolExecutor(len(clusters)) as pool:
            list(pool.map(SystemCluster.start, clusters))
        yield ShardedClusters(clusters[0], clusters[1:])
    finally:
        for cluster in clusters:
            with suppress(Exception):
                cluster.stop()
        shutil.rmtree(root, ignore_errors=True)
