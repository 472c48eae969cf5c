-- Moving a run forward. Lock order inside a run, used by every function:
-- step_tasks -> step_states -> runs (the run row last), which keeps concurrent completions,
-- failures and cancellations of one run free of deadlocks.

-- _step_input(run_id, flow_slug, step_slug, run_input): what a non-map step receives:
-- the run input for a root step, else {dep_slug: output} of its completed dependencies
-- (a skipped dependency's key is absent).
create or replace function pgflow._step_input(
  run_id uuid, flow_slug text, step_slug text, run_input jsonb, deps_count int
)
returns jsonb
language plpgsql
stable
set search_path = ''
as $$
begin
  if deps_count = 0 then
    return run_input;
  end if;
  return (
    select coalesce(jsonb_object_agg(d.dep_slug, ds.output), '{}'::jsonb)
    from pgflow.deps d
    join pgflow.step_states ds
      on ds.run_id = _step_input.run_id and ds.step_slug = d.dep_slug
    where d.flow_slug = _step_input.flow_slug and d.step_slug = _step_input.step_slug
      and ds.status = 'completed'
  );
end;
$$;

-- _release_dependents(...): one dependency of each direct dependent is resolved. Returns
-- how many dependents have no unresolved dependency left (ready to start).
create or replace function pgflow._release_dependents(run_id uuid, flow_slug text, step_slug text)
returns int
language plpgsql
volatile
set search_path = ''
as $$
declare
  ready int;
begin
  with released as (
    update pgflow.step_states ss
    set remaining_deps = ss.remaining_deps - 1
    from pgflow.deps d
    where d.flow_slug = _release_dependents.flow_slug
      and d.dep_slug = _release_dependents.step_slug
      and ss.run_id = _release_dependents.run_id and ss.step_slug = d.step_slug
      and ss.status = 'created'
    returning ss.remaining_deps
  )
  select count(*) filter (where r.remaining_deps = 0) into ready from released r;
  return ready;
end;
$$;

-- _cancel_live_tasks(run_id, step_slug): cancel the queued and started tasks of a run (or
-- of one of its steps). Always the first lock a terminalising function takes, keeping the
-- tasks -> steps -> run order. Late reports for these tasks then change nothing.
create or replace function pgflow._cancel_live_tasks(run_id uuid, step_slug text default null)
returns void
language plpgsql
volatile
set search_path = ''
as $$
begin
  update pgflow.step_tasks t set status = 'cancelled', cancelled_at = now(), leased_until = null
  where t.run_id = _cancel_live_tasks.run_id and t.status in ('queued', 'started')
    and (_cancel_live_tasks.step_slug is null or t.step_slug = _cancel_live_tasks.step_slug);
end;
$$;

-- _skip_step(run_id, step_slug, reason, cascade): skip a step (cancelling any tasks it
-- still has) and, with cascade, every descendant; without cascade its dependents run
-- without its key. Returns the number of steps skipped.
create or replace function pgflow._skip_step(
  run_id uuid, step_slug text, reason text, cascade boolean
)
returns int
language plpgsql
volatile
set search_path = ''
as $$
declare
  flow text;
  skipped record;
  n int := 0;
begin
  select ss.flow_slug into flow from pgflow.step_states ss
  where ss.run_id = _skip_step.run_id and ss.step_slug = _skip_step.step_slug;
  perform pgflow._cancel_live_tasks(run_id, step_slug);
  for skipped in
    with recursive downstream(step_slug, reason) as (
      select _skip_step.step_slug, _skip_step.reason
      union
      select d.step_slug, format('ancestor %L was skipped', _skip_step.step_slug)
      from downstream ds join pgflow.deps d
        on d.flow_slug = flow and d.dep_slug = ds.step_slug
      where cascade
    )
    update pgflow.step_states ss
    set status = 'skipped', skip_reason = ds.reason, skipped_at = now()
    from (select distinct on (x.step_slug) x.step_slug, x.reason from downstream x
          order by x.step_slug, x.step_slug = _skip_step.step_slug desc) ds
    where ss.run_id = _skip_step.run_id and ss.step_slug = ds.step_slug
      and ss.status in ('created', 'started')
    returning ss.step_slug
  loop
    n := n + 1;
    perform pgflow._emit(run_id, flow, 'step:' || skipped.step_slug || ':skipped', 'skipped',
      skipped.step_slug);
  end loop;
  if not cascade then
    perform pgflow._release_dependents(run_id, flow, step_slug);
  end if;
  return n;
end;
$$;

-- _finish_run(run_id, status, error_message): terminalise a run and everything it still
-- has in flight (tasks, then steps, then the run: the documented lock order), so nothing
-- of a dead run is ever claimed again. No-op on a run that is already terminal.
create or replace function pgflow._finish_run(run_id uuid, status text, error_message text)
returns void
language plpgsql
volatile
set search_path = ''
as $$
declare
  flow text;
begin
  perform pgflow._cancel_live_tasks(run_id);
  update pgflow.step_states ss set status = 'cancelled', cancelled_at = now()
  where ss.run_id = _finish_run.run_id and ss.status in ('created', 'started');
  update pgflow.runs r set
    status = _finish_run.status,
    error_message = _finish_run.error_message,
    failed_at = case when _finish_run.status = 'failed' then now() end,
    cancelled_at = case when _finish_run.status = 'cancelled' then now() end,
    finished_at = now()
  where r.run_id = _finish_run.run_id and r.status = 'started'
  returning r.flow_slug into flow;
  if found then
    perform pgflow._emit(run_id, flow, 'run:' || status, status);
  end if;
end;
$$;

-- _fail_step(run_id, step_slug, message): a step failed for good: mark it and fail the run.
-- The run's live tasks are cancelled first, keeping the tasks -> steps -> run lock order.
create or replace function pgflow._fail_step(run_id uuid, step_slug text, message text)
returns void
language plpgsql
volatile
set search_path = ''
as $$
declare
  flow text;
begin
  perform pgflow._cancel_live_tasks(run_id);
  update pgflow.step_states ss
  set status = 'failed', failed_at = now(), error_message = message
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
