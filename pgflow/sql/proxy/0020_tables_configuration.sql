-- The proxy's configuration, written by pgflow_proxy.configure() only.
-- * state: one row; shard_count (N) fixes the routing (a run's shard is a function of its id
--   and N, see shard_of), partitions the power of two PL/Proxy is given (see configure),
--   schema_version the pgflow schema version every shard had when the proxy was installed,
--   proxy_version the version of this folder's SQL that was applied.
-- * shards: each shard's libpq connection string as the proxy's server uses it, without a
--   password (a password lives in the user mapping, which only superusers can read).
create table if not exists pgflow_proxy.state (
  singleton boolean primary key default true check (singleton),
  shard_count int not null check (shard_count >= 1),
  partitions int not null check (partitions >= shard_count),
  schema_version int,
  proxy_version int not null,
  configured_at timestamptz not null default now()
);

create table if not exists pgflow_proxy.shards (
  shard int primary key check (shard >= 0),
  conninfo text not null
);
