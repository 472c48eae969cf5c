-- prune(older_than): delete runs that finished more than `older_than` ago, with their step
-- states and tasks. Live runs are never touched. Returns the number of runs deleted.
create or replace function pgflow.prune(older_than interval)
returns int
language sql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
  with doomed as (
    -- a run that finished before the cut-off started before it too: walk runs_by_started
    select r.run_id from pgflow.runs r
    where r.started_at < now() - older_than and r.finished_at < now() - older_than
  ), tasks as (
    delete from pgflow.step_tasks t using doomed d where t.run_id = d.run_id
  ), states as (
    delete from pgflow.step_states ss using doomed d where ss.run_id = d.run_id
  ), runs as (
    delete from pgflow.runs r using doomed d where r.run_id = d.run_id returning 1
  )
  select count(*)::int from runs;
$$;
