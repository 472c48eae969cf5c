"""Deploying flows to every shard (``pgflow deploy`` with ``--shard``, or given a proxy).

Each shard is a full pgflow database, so each gets every flow, by the rules of
:mod:`pgflow.deploy` (production: a changed shape is refused; ``dev``: recreated). To keep
the shards alike, :func:`deploy_to_shards`

1. connects to every shard first (a shard that is down stops the deploy before anything
   changes, naming it) and refuses shards at different schema versions;
2. deploys on each shard inside one transaction per shard, all open at once;
3. commits them only when every shard accepted: a flow refused on one shard (its shape
   differs there) rolls every shard back.

The commits themselves are one per shard, one after the other: a shard lost in that
instant keeps the old definitions while the others have the new ones; deploying again
converges (an identical flow is a no-op).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

import psycopg

from pgflow.compiler.scripts import CompiledScript
from pgflow.db.connection import connect
from pgflow.db.errors import wrap_db_errors
from pgflow.db.schema import install as install_schema
from pgflow.deploy import DeployResult, deploy_flows
from pgflow.deploy_sql import deploy_scripts
from pgflow.dsl.flow import Flow
from pgflow.errors import PgflowError
from pgflow.sharding.shards import Shard, check_versions, on_shard, shard_list
from pgflow.sql import query

__all__ = ["ShardDeploy", "deploy_to_shards"]

Deployer = Callable[[psycopg.Connection[Any]], list[DeployResult]]


@dataclass(frozen=True, slots=True)
class ShardDeploy:
    """What deploying did on one shard.

    Attributes:
        shard: the shard.
        results: one result per flow, as :func:`pgflow.deploy.deploy_flows` reports them.
    """

    shard: Shard
    results: list[DeployResult]


def deploy_to_shards(
    shard_urls: Iterable[str],
    flows: Sequence[Flow] = (),
    scripts: Sequence[CompiledScript] = (),
    *,
    dev: bool = False,
    install: bool = False,
) -> list[ShardDeploy]:
    """Deploy flows (or compiled scripts) to every shard; all shards or none.

    Args:
        shard_urls: every shard, in routing order.
        flows: the flows to deploy (or ``scripts``: compiled SQL files).
        scripts: compiled SQL files to deploy instead of ``flows``.
        dev: recreate flows whose shape changed, deleting their runs.
        install: install or upgrade the pgflow schema on every shard first.

    Raises:
        ShapeMismatchError: (without ``dev``) a flow's shape differs on some shard;
            nothing was changed anywhere. The message names the shard.
        SchemaError: the shards' schema versions differ, or one has no pgflow schema.
        DatabaseError: a shard cannot be reached (named); nothing was changed.
    """
    shards = shard_list(shard_urls)
    if install:
        for shard in shards:
            try:
                install_schema(shard.url)
            except PgflowError as exc:
                raise on_shard(shard, exc) from exc

    def deploy(conn: psycopg.Connection[Any]) -> list[DeployResult]:
        if scripts:
            return deploy_scripts(conn, scripts, dev=dev)
        return deploy_flows(conn, flows, dev=dev)

    with ExitStack() as stack:
        conns = [(shard, stack.enter_context(_connect(shard))) for shard in shards]
        check_versions([(shard, _version(shard, conn)) for shard, conn in conns])
        for _, conn in conns:
            stack.enter_context(conn.transaction())
        return [ShardDeploy(shard, _on(shard, conn, deploy)) for shard, conn in conns]


def _connect(shard: Shard) -> psycopg.Connection[Any]:
    try:
        return connect(shard.url)
    except PgflowError as exc:
        raise on_shard(shard, exc) from exc


def _version(shard: Shard, conn: psycopg.Connection[Any]) -> int | None:
    with wrap_db_errors():
        found = conn.execute(query("proxy_detect")).fetchone()
        if not found or not found[1]:
            return None
        row = conn.execute(query("schema_version")).fetchone()
    return None if row is None or row[0] is None else int(row[0])


def _on(shard: Shard, conn: psycopg.Connection[Any], deploy: Deployer) -> list[DeployResult]:
    try:
        return deploy(conn)
    except PgflowError as exc:  # a refused shape (ShapeMismatchError) above all
        raise on_shard(shard, exc) from exc
