-- retry_run(run_id) through the proxy: on the run's shard (shard_of), start a failed or cancelled
-- run again where it stopped (a live or completed run is returned unchanged).
-- Returns the run (pgflow_proxy.run). Unknown run: PGF07 from the shard; a shard the
-- proxy cannot reach: PGF20 naming it.
create or replace function pgflow_proxy.route_retry_run(shard int, run_id uuid)
returns pgflow_proxy.run
language plproxy
as $$
  cluster 'pgflow_shards';
  run on shard;
  select r.run_id, r.flow_slug, r.status, r.input, r.output, r.error_message,
    r.remaining_steps, r.started_at, r.completed_at, r.failed_at, r.cancelled_at,
    r.finished_at, r.priority
  from pgflow.retry_run(run_id) r;
$$;

create or replace function pgflow.retry_run(run_id uuid)
returns pgflow_proxy.run
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
as $$
declare
  state text;
  message text;
  detail text;
  hint text;
  shard int := pgflow_proxy._shard_for(retry_run.run_id);
begin
  return pgflow_proxy.route_retry_run(shard, retry_run.run_id);
exception when others then
  get stacked diagnostics state = returned_sqlstate, message = message_text,
    detail = pg_exception_detail, hint = pg_exception_hint;
  perform pgflow_proxy._rethrow(shard, state, message, detail, hint);
end;
$$;
