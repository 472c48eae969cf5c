-- _fail_step(run_id, step_slug, message): a step failed for good: mark it and fail the run.
-- The run's live tasks are cancelled first, keeping the tasks -> steps -> run lock order.
create or replace function pgflow._fail_step(run_id uuid, step_slug text, message text)
returns void
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
set enable_seqscan = off
as $$
declare
  flow text;
begin
  perform pgflow._cancel_live_tasks(run_id);
  update pgflow.step_states ss
  set status = 'failed', failed_at = pgflow._now(), error_message = message
  where ss.run_id = _fail_step.run_id and ss.step_slug = _fail_step.step_slug
    and ss.status in ('created', 'started')
  returning ss.flow_slug into flow;
  if found then
    perform pgflow._emit(run_id, flow, 'step:' || step_slug || ':failed', 'failed', step_slug);
  end if;
  perform pgflow._finish_run(run_id, 'failed',
    format('step %L failed: %s', step_slug, message));
end;
$$;
