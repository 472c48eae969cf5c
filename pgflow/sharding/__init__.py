"""Sharding across Postgres clusters with PL/Proxy (docs/sharding.md).

N shard databases each hold a full pgflow schema; a proxy database in front of them has
pgflow's public functions with the same names and parameters, routed by run id with
PL/Proxy, so clients and the CLI use the proxy's URL as they would one database's:

- :func:`install_proxy`: install or upgrade every shard and the proxy
  (``pgflow install --proxy --shard URL ...``);
- :func:`deploy_to_shards`: deploy flows to every shard, all or none (``pgflow deploy``
  given shards or the proxy);
- :func:`proxy_shard_urls`: a proxy's shards, for workers and deploys;
- workers serve shards directly: ``pgflow.Worker(flows, shards=[...])`` runs one claim
  loop per shard, so a shard that is down stalls only its own runs.
"""

from __future__ import annotations

from pgflow.sharding.deploy import ShardDeploy as ShardDeploy
from pgflow.sharding.deploy import deploy_to_shards as deploy_to_shards
from pgflow.sharding.install import ProxyInstallResult as ProxyInstallResult
from pgflow.sharding.install import install_proxy as install_proxy
from pgflow.sharding.shards import Shard as Shard
from pgflow.sharding.shards import proxy_shard_urls as proxy_shard_urls
from pgflow.sharding.shards import shard_list as shard_list

__all__ = [
    "ProxyInstallResult",
    "Shard",
    "ShardDeploy",
    "deploy_to_shards",
    "install_proxy",
    "proxy_shard_urls",
    "shard_list",
]
