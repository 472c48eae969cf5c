-- start_flow(flow_slug, input, run_id, trace_context, priority) through the proxy: start the
-- run on the shard its id maps to (shard_of) and return it (pgflow_proxy.run).
-- * No run_id: the proxy generates a UUIDv7, because the id decides the shard; later reads,
--   cancels and retries then find the run from its id alone, with no lookup table. When
--   that shard refuses the connection (down), nothing was sent to it, so the proxy draws
--   new ids until one maps to a shard not tried yet: while a shard is down, new runs start
--   on the others. PGF20 only when every shard is down.
-- * A caller-supplied run_id is routed the same way and never moved, so an idempotent start
--   (the same id again) reaches the same shard and returns the existing run; its shard
--   being down raises PGF20 naming it.
-- * A connection lost after the call was sent raises PGF20 too (the run may exist there:
--   starting it again with its run_id, once the shard is back, is safe).
-- * Errors of the shard (unknown flow PGF02, bad input PGF08, ...) come back as one
--   database raises them (_rethrow).
-- * The shard commits the start on its own (PL/Proxy calls are not part of the caller's
--   transaction on the proxy).
create or replace function pgflow_proxy.route_start_flow(
  shard int, flow_slug text, input jsonb, run_id uuid, trace_context jsonb, priority int
)
returns pgflow_proxy.run
language plproxy
as $$
  cluster 'pgflow_shards';
  run on shard;
  select r.run_id, r.flow_slug, r.status, r.input, r.output, r.error_message,
    r.remaining_steps, r.started_at, r.completed_at, r.failed_at, r.cancelled_at,
    r.finished_at, r.priority
  from pgflow.start_flow(flow_slug, input, run_id, trace_context, priority) r;
$$;

create or replace function pgflow.start_flow(
  flow_slug text, input jsonb, run_id uuid default null, trace_context jsonb default null,
  priority int default null
)
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
  id uuid := coalesce(start_flow.run_id, pgflow_proxy.uuid7());
  shard int := pgflow_proxy._shard_for(id);
  tried int[] := '{}'::int[];
begin
  loop
    begin
      return pgflow_proxy.route_start_flow(shard, start_flow.flow_slug, start_flow.input, id,
        start_flow.trace_context, start_flow.priority);
    exception when others then
      get stacked diagnostics state = returned_sqlstate, message = message_text,
        detail = pg_exception_detail, hint = pg_exception_hint;
      if start_flow.run_id is not null or not pgflow_proxy._unsent(state, message) then
        if pgflow_proxy._unreachable(state, message) then
          detail := format('Run %s may have started on that shard: once the shard is back, '
            || 'start it again with run_id => %s (an idempotent start) or read it.', id, id);
        end if;
        perform pgflow_proxy._rethrow(shard, state, message, detail, hint);
      end if;
      tried := tried || shard;
      if cardinality(tried) >= (select s.shard_count from pgflow_proxy.state s) then
        perform pgflow_proxy._rethrow(null, state, message, detail, hint);
      end if;
      loop  -- draw ids until one maps to a shard not tried yet
        id := pgflow_proxy.uuid7();
        shard := pgflow_proxy.shard_of(id);
        exit when not shard = any(tried);
      end loop;
    end;
  end loop;
end;
$$;
