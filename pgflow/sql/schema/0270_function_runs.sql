-- cancel_run(run_id): cancel a live run and everything it has in flight (tasks, steps,
-- then the run). Cancelling a finished run changes nothing. Unknown run: PGF07.
create or replace function pgflow.cancel_run(run_id uuid)
returns pgflow.runs
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  result pgflow.runs;
begin
  perform pgflow._finish_run(run_id, 'cancelled', 'cancelled on request');
  select * into result from pgflow.runs r where r.run_id = cancel_run.run_id;
  if not found then
    perform pgflow._raise('PGF07', format('unknown run %s', run_id),
      'Check the run id; `pgflow runs` lists recent runs.');
  end if;
  return result;
end;
$$;

-- get_run_with_states(run_id): {"run": {...}, "steps": [{step_slug, status, output,
-- error_message, skip_reason, attempts, tasks: {status: count}, timestamps ...}]} in
-- definition order. For inspection and clients; unknown run: PGF07.
create or replace function pgflow.get_run_with_states(run_id uuid)
returns jsonb
language plpgsql
stable
security definer
set search_path = ''
as $$
declare
  result jsonb;
begin
  select jsonb_build_object('run', to_jsonb(r), 'steps', coalesce((
    select jsonb_agg(to_jsonb(ss) || jsonb_build_object(
      'step_type', s.step_type,
      'attempts', coalesce(tk.attempts, 0),
      'tasks', coalesce(tk.by_status, '{}'::jsonb),
      'error_type', tk.error_type,
      'error_traceback', tk.error_traceback
    ) order by ss.step_index)
    from pgflow.step_states ss
    join pgflow.steps s on s.flow_slug = ss.flow_slug and s.step_slug = ss.step_slug
    left join lateral (
      select max(t.attempts_count) as attempts,
        (select jsonb_object_agg(c.status, c.n) from (
          select t2.status, count(*) as n from pgflow.step_tasks t2
          where t2.run_id = ss.run_id and t2.step_slug = ss.step_slug group by t2.status) c
        ) as by_status,
        (array_agg(t.error_type order by t.task_index)
          filter (where t.status = 'failed'))[1] as error_type,
        (array_agg(t.error_traceback order by t.task_index)
          filter (where t.status = 'failed'))[1] as error_traceback
      from pgflow.step_tasks t
      where t.run_id = ss.run_id and t.step_slug = ss.step_slug
    ) tk on true
    where ss.run_id = r.run_id
  ), '[]'::jsonb))
  into result
  from pgflow.runs r where r.run_id = get_run_with_states.run_id;
  if result is null then
    perform pgflow._raise('PGF07', format('unknown run %s', run_id),
      'Check the run id; `pgflow runs` lists recent runs.');
  end if;
  return result;
end;
$$;

-- prune(older_than): delete runs that finished more than `older_than` ago, with their step
-- states and tasks. Live runs are never touched. Returns the number of runs deleted.
create or replace function pgflow.prune(older_than interval)
returns int
language sql
volatile
security definer
set search_path = ''
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

-- delete_flow_and_data(flow_slug): remove a flow, its definition and all its runs
-- (development and tests). An unknown slug is a no-op.
create or replace function pgflow.delete_flow_and_data(flow_slug text)
returns void
language sql
volatile
security definer
set search_path = ''
as $$
  delete from pgflow.step_tasks t using pgflow.runs r
  where r.flow_slug = delete_flow_and_data.flow_slug and t.run_id = r.run_id;
  delete from pgflow.step_states ss using pgflow.runs r
  where r.flow_slug = delete_flow_and_data.flow_slug and ss.run_id = r.run_id;
  delete from pgflow.runs r where r.flow_slug = delete_flow_and_data.flow_slug;
  delete from pgflow.flows f where f.flow_slug = delete_flow_and_data.flow_slug;
$$;
