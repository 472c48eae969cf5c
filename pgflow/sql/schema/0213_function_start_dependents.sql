-- _start_dependents(run_id, flow_slug, step_slug): the step completed; one dependency of
-- each direct dependent is resolved, and a dependent that becomes ready is started in the
-- same statement when starting it needs nothing evaluated: a single step (not a map) with
-- no condition and no start delay (its task input is built at claim time). A completion
-- racing it for another dependency of a fan-in holds the dependent's row until it commits,
-- so exactly one of them starts it; the fan-in's task then records its input's size in a
-- statement of its own (see _input_size). This is what _start_step does for such a step,
-- without the statements that find the ready steps again and start them one at a time: a
-- chain's next step, a diamond's branches or its join cost one statement.
-- _complete_batch does the same for every completed step of a batch at once.
-- * Each started step gets one queued task, tagged at its flow's queue head in the run's
--   priority band (_queue_head, probed once per call, and only when a step starts), and a
--   'step:<slug>:started' event (in step_index order); the flow's workers are woken once.
-- * Returns how many dependents became ready but were not started here (a map, a condition
--   or a start delay): the caller then lets _advance_run start them (scan).
-- NULL arguments match nothing (returns 0). Locks: the dependents' step-state rows (the
-- same rows _release_dependents locks, in the same statement position).
create or replace function pgflow._start_dependents(
  run_id uuid, flow_slug text, step_slug text
)
returns int
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
-- index lookups only: a generic plan is right and saves re-planning
set plan_cache_mode = force_generic_plan
set enable_seqscan = off
as $$
declare
  dependents text[];
  plains boolean[];
  fan_ins boolean[];
  started text[];
  fans text[];
  waiting int;
  s text;
begin
  -- a step without dependents (every run's last steps) costs one index probe
  select array_agg(x.step_slug order by st.step_index),
    array_agg(st.step_type = 'single'
      and st.required_input_pattern is null and st.forbidden_input_pattern is null
      and coalesce(st.opt_start_delay, 0) = 0 order by st.step_index),
    array_agg(st.deps_count > 1 order by st.step_index)
  into dependents, plains, fan_ins
  from pgflow.deps x
  join pgflow.steps st on st.flow_slug = x.flow_slug and st.step_slug = x.step_slug
  where x.flow_slug = _start_dependents.flow_slug
    and x.dep_slug = _start_dependents.step_slug;
  if dependents is null then
    return 0;
  end if;
  with released as (
    update pgflow.step_states ss set
      remaining_deps = ss.remaining_deps - 1,
      status = case when d.plain and ss.remaining_deps = 1 then 'started' else ss.status end,
      started_at = case when d.plain and ss.remaining_deps = 1 then pgflow._now()
        else ss.started_at end,
      initial_tasks = case when d.plain and ss.remaining_deps = 1 then 1
        else ss.initial_tasks end,
      remaining_tasks = case when d.plain and ss.remaining_deps = 1 then 1
        else ss.remaining_tasks end
    from unnest(dependents, plains, fan_ins) with ordinality as d(step_slug, plain, fan_in, n)
    where ss.run_id = _start_dependents.run_id and ss.step_slug = d.step_slug
      and ss.status = 'created'
    returning ss.step_slug, ss.status, ss.remaining_deps, d.fan_in, d.n
  ),
  -- read only when a step starts (the run's priority band), probed once
  head as materialized (
    select pgflow._queue_head(_start_dependents.flow_slug,
      coalesce((select u.priority from pgflow.runs u
                where u.run_id = _start_dependents.run_id), 0)) as tag
  ),
  queued as (
    insert into pgflow.step_tasks (run_id, step_slug, task_index, flow_slug, available_at,
      priority_at)
    select _start_dependents.run_id, r.step_slug, 0, _start_dependents.flow_slug,
      pgflow._now(), (select h.tag from head h)
    from released r
    where r.status = 'started'
  )
  select (count(*) filter (where r.status = 'created' and r.remaining_deps = 0))::int,
    array_agg(r.step_slug order by r.n) filter (where r.status = 'started'),
    array_agg(r.step_slug) filter (where r.status = 'started' and r.fan_in)
  into waiting, started, fans
  from released r;
  if fans is not null then  -- a statement of its own: see _input_size
    update pgflow.step_tasks t set
      input_bytes = pgflow._input_size(t.run_id, t.flow_slug, t.step_slug)
    where t.run_id = _start_dependents.run_id and t.step_slug = any(fans) and t.task_index = 0;
  end if;
  if started is not null then
    foreach s in array started loop
      perform pgflow._emit(run_id, flow_slug, 'step:' || s || ':started', 'started', s);
    end loop;
    perform pgflow._wake_workers(flow_slug);
  end if;
  return waiting;
end;
$$;
