-- _shard_for(run_id): shard_of(run_id), or raise: PGF07 for a NULL run id (no run has it,
-- as on a shard), PGF21 when the proxy has no shards configured yet.
create or replace function pgflow_proxy._shard_for(run_id uuid)
returns int
language plpgsql
stable
set search_path = pg_catalog, pg_temp
as $$
declare
  shard int := pgflow_proxy.shard_of(run_id);
begin
  if run_id is null then
    raise exception using errcode = 'PGF07', message = 'unknown run NULL',
      hint = 'Check the run id; `pgflow runs` lists recent runs.';
  elsif shard is null then
    raise exception using errcode = 'PGF21',
      message = 'this pgflow proxy has no shards configured',
      hint = 'Run `pgflow install --proxy --shard URL --shard URL ... --database-url PROXY_URL`.';
  end if;
  return shard;
end;
$$;
