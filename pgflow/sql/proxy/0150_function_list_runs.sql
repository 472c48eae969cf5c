-- list_runs(flow_slug, status, max_runs, since_at, since_ago): recent runs of every shard,
-- newest first (pgflow_proxy.run rows): what Client.runs() and `pgflow runs` read through
-- the proxy, where there is no pgflow.runs table. Filters as in one database: NULL means
-- any; since_at (a moment) or since_ago (an interval back from each shard's clock).
-- * Each shard returns its own newest max_runs matching runs (walking runs_by_started, or
--   runs_by_flow with a flow: O(max_runs + skipped rows) per shard), in parallel (RUN ON
--   ALL); the proxy keeps the newest max_runs of those.
-- * A shard the proxy cannot reach fails the whole list with PGF20 naming it: a partial
--   list would look complete.
create or replace function pgflow_proxy.route_list_runs(
  flow_slug text, status text, max_runs int, since_at timestamptz, since_ago interval
)
returns setof pgflow_proxy.run
language plproxy
as $$
  cluster 'pgflow_shards';
  run on all;
  select r.run_id, r.flow_slug, r.status, r.input, r.output, r.error_message,
    r.remaining_steps, r.started_at, r.completed_at, r.failed_at, r.cancelled_at,
    r.finished_at, r.priority
  from pgflow.runs r
  where (flow_slug is null or r.flow_slug = flow_slug)
    and (status is null or r.status = status)
    and r.started_at >= coalesce(since_at, now() - since_ago, '-infinity'::timestamptz)
  order by r.started_at desc, r.run_id
  limit max_runs;
$$;

create or replace function pgflow.list_runs(
  flow_slug text default null, status text default null, max_runs int default 50,
  since_at timestamptz default null, since_ago interval default null
)
returns setof pgflow_proxy.run
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
as $$
declare
  state text;
  message text;
  detail text;
  hint text;
begin
  if (select s.shard_count from pgflow_proxy.state s) is null then
    perform pgflow_proxy._any_order();  -- raises PGF21
  end if;
  return query
    select r.* from pgflow_proxy.route_list_runs(list_runs.flow_slug, list_runs.status,
      list_runs.max_runs, list_runs.since_at, list_runs.since_ago) r
    order by r.started_at desc, r.run_id
    limit list_runs.max_runs;
exception when others then
  get stacked diagnostics state = returned_sqlstate, message = message_text,
    detail = pg_exception_detail, hint = pg_exception_hint;
  perform pgflow_proxy._rethrow(null, state, message, detail, hint);
end;
$$;
