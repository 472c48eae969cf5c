-- The proxy database of a sharded set-up (docs/sharding.md): PL/Proxy routes pgflow's public
-- functions by run id to N shard databases, each a full pgflow schema.
-- * pgflow: the public functions, with the names and parameters they have in one database,
--   so clients and the CLI work unchanged against the proxy.
-- * pgflow_proxy: the configuration (shards, state) and the PL/Proxy routes.
-- Idempotent: every file of this folder runs again on each `pgflow install --proxy`.
-- Needs the plproxy extension on the proxy's server (Debian: postgresql-NN-plproxy) and a
-- superuser (creating the extension and the foreign server of the shards).
create extension if not exists plproxy;
create schema if not exists pgflow;
create schema if not exists pgflow_proxy;
