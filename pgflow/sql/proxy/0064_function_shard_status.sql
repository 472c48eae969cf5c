-- shard_status(): one row per shard: its index, connection string (no password), whether
-- the proxy's server reaches it, its pgflow schema version and, when unreachable, why.
-- Asks the shards one by one; an unreachable shard costs up to its connect_timeout.
-- For `pgflow shards` and for naming the shard behind a failed call (_shard_failed).
create or replace function pgflow_proxy.shard_status()
returns table (shard int, conninfo text, reachable boolean, schema_version int, error text)
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
as $$
declare
  s record;
  info record;
begin
  for s in select x.shard, x.conninfo from pgflow_proxy.shards x order by x.shard loop
    shard := s.shard;
    conninfo := s.conninfo;
    begin
      info := pgflow_proxy.route_shard_info(s.shard);
      reachable := true;
      schema_version := info.schema_version;
      error := null;
    exception when others then
      reachable := false;
      schema_version := null;
      error := pgflow_proxy._first_line(sqlerrm);
    end;
    return next;
  end loop;
end;
$$;
