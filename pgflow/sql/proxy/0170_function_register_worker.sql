-- register_worker(...) on the proxy: refuse with PGF21. Workers claim and report on the
-- shards themselves (one connection pool and claim loop per shard), never through the
-- proxy: a claim over every shard at once would stall every worker while one shard is down.
-- A worker registers before its first claim, so one given the proxy's URL stops here with
-- a message saying what to do. It returns pgflow_proxy.worker (a worker_id column) so that
-- the worker's query resolves and the call, not the query, fails.
do $$
begin
  if to_regtype('pgflow_proxy.worker') is null then
    create type pgflow_proxy.worker as (worker_id uuid);
  end if;
end;
$$;

create or replace function pgflow.register_worker(
  worker_id uuid, flow_slugs text[], hostname text default null, pid int default null
)
returns pgflow_proxy.worker
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
as $$
begin
  raise exception using errcode = 'PGF21',
    message = format('%s is a pgflow proxy database: workers connect to its shards',
      current_database()),
    hint = 'Pass the shards to the worker: `pgflow worker FLOWS --shard URL --shard URL ...` '
      || 'or Worker(flows, shards=[...]); `pgflow worker FLOWS --database-url PROXY_URL` '
      || 'finds them itself (`pgflow shards` lists them).';
end;
$$;
