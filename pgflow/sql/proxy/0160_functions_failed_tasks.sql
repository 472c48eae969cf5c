-- failed_tasks(run_id, max_tasks) and failed_task_count(run_id) through the proxy: a run's
-- failed tasks with their last attempt's error (step order, then task index), and how many
-- failed in all, from the run's shard (shard_of): what `pgflow status` shows of a failed
-- run. Unknown run: no rows (and 0), as in one database; a shard the proxy cannot reach:
-- PGF20 naming it.
create or replace function pgflow_proxy.route_failed_tasks(shard int, run_id uuid, max_tasks int)
returns table (step_slug text, task_index int, attempts_count int, error_type text,
  error_message text, error_traceback text)
language plproxy
as $$
  cluster 'pgflow_shards';
  run on shard;
  select t.step_slug, t.task_index, t.attempts_count, t.error_type, t.error_message,
    t.error_traceback
  from pgflow.step_tasks t
  join pgflow.step_states ss on ss.run_id = t.run_id and ss.step_slug = t.step_slug
  where t.run_id = run_id and t.status = 'failed'
  order by ss.step_index, t.task_index
  limit max_tasks;
$$;

create or replace function pgflow.failed_tasks(run_id uuid, max_tasks int default 20)
returns table (step_slug text, task_index int, attempts_count int, error_type text,
  error_message text, error_traceback text)
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
as $$
declare
  state text;
  message text;
  detail text;
  hint text;
  shard int := pgflow_proxy._shard_for(failed_tasks.run_id);
begin
  return query select * from pgflow_proxy.route_failed_tasks(shard, failed_tasks.run_id,
    failed_tasks.max_tasks);
exception when others then
  get stacked diagnostics state = returned_sqlstate, message = message_text,
    detail = pg_exception_detail, hint = pg_exception_hint;
  perform pgflow_proxy._rethrow(shard, state, message, detail, hint);
end;
$$;

create or replace function pgflow_proxy.route_failed_task_count(shard int, run_id uuid)
returns int
language plproxy
as $$
  cluster 'pgflow_shards';
  run on shard;
  select count(*)::int as route_failed_task_count from pgflow.step_tasks t
  where t.run_id = run_id and t.status = 'failed';
$$;

create or replace function pgflow.failed_task_count(run_id uuid)
returns int
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
as $$
declare
  state text;
  message text;
  detail text;
  hint text;
  shard int := pgflow_proxy._shard_for(failed_task_count.run_id);
begin
  return pgflow_proxy.route_failed_task_count(shard, failed_task_count.run_id);
exception when others then
  get stacked diagnostics state = returned_sqlstate, message = message_text,
    detail = pg_exception_detail, hint = pg_exception_hint;
  perform pgflow_proxy._rethrow(shard, state, message, detail, hint);
end;
$$;
