-- _start_step(run_id, step, run_input): a step whose dependencies are resolved starts:
-- conditions are evaluated once on its input; a map copies each element of its array into
-- its own task once (O(N), never per task); an empty map completes at once with [];
-- a non-array where an array is needed fails the run with TYPE_VIOLATION (keeping the value).
-- Returns the number of steps that finished here (completed or skipped), or -1 when the run
-- failed.
create or replace function pgflow._start_step(run_id uuid, step pgflow.steps, run_input jsonb)
returns int
language plpgsql
volatile
set search_path = ''
as $$
declare
  step_input jsonb;
  unmet text;
  arr jsonb;
  n int := 1;
  available timestamptz;
begin
  -- an earlier step of the same pass may have skipped this one
  perform 1 from pgflow.step_states ss
  where ss.run_id = _start_step.run_id and ss.step_slug = step.step_slug
    and ss.status = 'created' and ss.remaining_deps = 0;
  if not found then
    return 0;
  end if;
  -- the input is only needed for conditions and for a dependent map's array
  if step.required_input_pattern is not null or step.forbidden_input_pattern is not null
     or step.step_type = 'map' then
    step_input := pgflow._step_input(run_id, step.flow_slug, step.step_slug, run_input,
      step.deps_count);
    unmet := pgflow._unmet_condition(step, step_input);
  end if;
  if unmet is not null then
    if step.when_unmet = 'fail' then
      perform pgflow._fail_step(run_id, step.step_slug, unmet);
      return -1;
    end if;
    return pgflow._skip_step(run_id, step.step_slug, unmet, step.when_unmet = 'skip-cascade');
  end if;
  if step.step_type = 'map' then
    arr := case when step.deps_count = 0 then run_input
           else (select v from jsonb_each(step_input) as e(k, v)) end;
    if arr is null and step.deps_count > 0 then
      return pgflow._skip_step(run_id, step.step_slug,
        'the array it maps over comes from a skipped step', false);
    elsif jsonb_typeof(arr) is distinct from 'array' then
      perform pgflow._fail_step(run_id, step.step_slug, format(
        'TYPE_VIOLATION: map step %L expects an array %s but got %s: %s', step.step_slug,
        case when step.deps_count = 0 then 'as flow input' else 'from its dependency' end,
        coalesce(jsonb_typeof(arr), 'null'), left(coalesce(arr::text, 'null'), 10000)));
      return -1;
    end if;
    n := jsonb_array_length(arr);
    if n = 0 then
      update pgflow.step_states ss set status = 'started', started_at = now(),
        initial_tasks = 0, remaining_tasks = 0
      where ss.run_id = _start_step.run_id and ss.step_slug = step.step_slug;
      return least(pgflow._tasks_done(run_id, step.step_slug, 0, null), 1);
    end if;
  end if;

  available := now() + make_interval(secs => coalesce(step.opt_start_delay, 0));
  insert into pgflow.step_tasks (run_id, step_slug, task_index, flow_slug, input,
    available_at, priority_at)
  select _start_step.run_id, step.step_slug, i, step.flow_slug, e.value, available,
    available + make_interval(secs => i / 1000.0)
  from (
    select v.value, (v.ordinality - 1)::int as i
    from jsonb_array_elements(arr) with ordinality as v
    where step.step_type = 'map'
    union all
    select null, 0 where step.step_type = 'single'
  ) e;
  update pgflow.step_states ss set status = 'started', started_at = now(),
    initial_tasks = n, remaining_tasks = n
  where ss.run_id = _start_step.run_id and ss.step_slug = step.step_slug;
  perform pgflow._emit(run_id, step.flow_slug, 'step:' || step.step_slug || ':started',
    'started', step.step_slug);
  if coalesce(step.opt_start_delay, 0) = 0 then
    perform pgflow._wake_workers(step.flow_slug);
  end if;
  return 0;
end;
$$;

-- _unmet_condition(step, input): NULL when the step's conditions hold on its input, else
-- the reason. Patterns are JSON containment (@>) tests.
create or replace function pgflow._unmet_condition(step pgflow.steps, step_input jsonb)
returns text
language plpgsql
immutable
set search_path = ''
as $$
begin
  if step.required_input_pattern is not null
     and not (step_input @> step.required_input_pattern) then
    return format('condition unmet: input does not contain %s', step.required_input_pattern);
  elsif step.forbidden_input_pattern is not null
     and step_input @> step.forbidden_input_pattern then
    return format('condition unmet: input contains forbidden %s', step.forbidden_input_pattern);
  end if;
  return null;
end;
$$;

-- _advance_run(run_id, finished, scan): with `scan`, start every step whose dependencies
-- are resolved (again and again while empty maps and skips resolve more); then count
-- `finished` (steps the caller completed or skipped) plus those finished here off the run's
-- remaining steps, completing the run when none remain: its output is {leaf_slug: output}
-- of its completed leaf steps. The run row is locked last (one update, and one more that
-- stores the output when the run completes).
create or replace function pgflow._advance_run(run_id uuid, finished int, scan boolean)
returns void
language plpgsql
volatile
set search_path = ''
as $$
declare
  run_input jsonb;
  step pgflow.steps;
  progressed boolean := scan;
  result int;
  run_status text;
  flow text;
begin
  if scan then
    select r.input into run_input from pgflow.runs r where r.run_id = _advance_run.run_id;
  end if;
  while progressed loop
    progressed := false;
    for step in
      select s.* from pgflow.step_states ss
      join pgflow.steps s on s.flow_slug = ss.flow_slug and s.step_slug = ss.step_slug
      where ss.run_id = _advance_run.run_id and ss.status = 'created' and ss.remaining_deps = 0
      order by s.step_index
    loop
      result := pgflow._start_step(run_id, step, run_input);
      if result < 0 then
        return;
      end if;
      finished := finished + result;
      progressed := progressed or result > 0;
    end loop;
  end loop;

  update pgflow.runs r set
    remaining_steps = r.remaining_steps - finished,
    status = case when r.remaining_steps = finished then 'completed' else r.status end,
    completed_at = case when r.remaining_steps = finished then now() end,
    finished_at = case when r.remaining_steps = finished then now() end
  where r.run_id = _advance_run.run_id and r.status = 'started'
    and (finished > 0 or r.remaining_steps = 0)
  returning r.status, r.flow_slug into run_status, flow;
  if run_status = 'completed' then
    -- A statement of its own, so its snapshot sees leaf outputs committed by concurrent
    -- completions this transaction waited for (see _tasks_done).
    update pgflow.runs r set output = (
      select coalesce(jsonb_object_agg(ss.step_slug, ss.output), '{}'::jsonb)
      from pgflow.step_states ss
      where ss.run_id = r.run_id and ss.status = 'completed'
        and not exists (select 1 from pgflow.deps d
                        where d.flow_slug = ss.flow_slug and d.dep_slug = ss.step_slug))
    where r.run_id = _advance_run.run_id;
    perform pgflow._emit(run_id, flow, 'run:completed', 'completed');
  end if;
end;
$$;
