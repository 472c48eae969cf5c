-- route_shard_info(shard): the pgflow schema version of one shard (NULL when pgflow is not
-- installed there) and its database name, asked over PL/Proxy: so it also proves that the
-- proxy's server can reach that shard. Errors are PL/Proxy's (see shard_status).
create or replace function pgflow_proxy.route_shard_info(
  shard int, out schema_version int, out database text
)
returns record
language plproxy
as $$
  cluster 'pgflow_shards';
  run on shard;
  select (select max(m.id) from pgflow.schema_migrations m
          where to_regclass('pgflow.schema_migrations') is not null)::int as schema_version,
    pg_catalog.current_database()::text as database;
$$;
