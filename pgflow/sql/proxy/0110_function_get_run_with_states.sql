-- get_run_with_states(run_id) through the proxy: the run's document from its shard
-- (shard_of), exactly as one database returns it. Unknown run: PGF07 from the shard; a
-- shard the proxy cannot reach: PGF20 naming it.
create or replace function pgflow_proxy.route_get_run_with_states(shard int, run_id uuid)
returns jsonb
language plproxy
as $$
  cluster 'pgflow_shards';
  run on shard;
  select pgflow.get_run_with_states(run_id) as route_get_run_with_states;
$$;

create or replace function pgflow.get_run_with_states(run_id uuid)
returns jsonb
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
as $$
declare
  state text;
  message text;
  detail text;
  hint text;
  shard int := pgflow_proxy._shard_for(get_run_with_states.run_id);
begin
  return pgflow_proxy.route_get_run_with_states(shard, get_run_with_states.run_id);
exception when others then
  get stacked diagnostics state = returned_sqlstate, message = message_text,
    detail = pg_exception_detail, hint = pg_exception_hint;
  perform pgflow_proxy._rethrow(shard, state, message, detail, hint);
end;
$$;
