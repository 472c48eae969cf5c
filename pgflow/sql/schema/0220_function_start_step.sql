-- _start_step(run_id, step, run_input, priority): a step whose dependencies are resolved
-- starts (its tasks queue in the run's priority band, see _queue_head):
-- conditions are evaluated once on its input; a map copies each element of its array into
-- its own task once (O(N), never per task); an empty map completes at once with [];
-- a non-array where an array is needed fails the run with TYPE_VIOLATION (keeping the value).
-- Stored values (docs/large-values.md): a condition is evaluated on the values its input's
-- references stand for, and a map splits the array a reference stands for; when SQL cannot
-- read one (an external store, deleted, or too large) the step fails with ValueUnavailable.
-- A map element larger than inline_limit_bytes is stored by reference; an element shaped
-- like a reference must be one of this run's (InvalidReference: the key is reserved).
-- Tasks are tagged for fair claiming (see _queue_head); with a start_delay they wait with
-- priority_at NULL until claim_tasks tags them when due. A fan-in task records the
-- size of the input it will be built from, so claim_tasks can fail it instead of building
-- a jsonb value Postgres cannot hold.
-- Returns the number of steps that finished here (completed or skipped), or -1 when the run
-- failed.
create or replace function pgflow._start_step(
  run_id uuid, step pgflow.steps, run_input jsonb, priority int default 0
)
returns int
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
set enable_seqscan = off
as $$
declare
  step_input jsonb;
  unmet text;
  arr jsonb;
  n int := 1;
  available timestamptz;
  tag timestamptz;
  input_size bigint;
  inline_bytes bigint;
  bad text;
  seen_input jsonb;
begin
  -- an earlier step of the same pass may have skipped this one
  perform 1 from pgflow.step_states ss
  where ss.run_id = _start_step.run_id and ss.step_slug = step.step_slug
    and ss.status = 'created' and ss.remaining_deps = 0;
  if not found then
    return 0;
  end if;
  if step.deps_count > 1 then
    input_size := pgflow._input_size(run_id, step.flow_slug, step.step_slug);
  end if;
  -- the input is only needed for conditions and for a dependent map's array
  if input_size > pgflow._jsonb_limit_bytes()
     and (step.required_input_pattern is not null or step.forbidden_input_pattern is not null)
  then
    perform pgflow._fail_step(run_id, step.step_slug, format(
      'InputTooLarge: step %L cannot evaluate its condition: its dependencies'' outputs total '
      || '%s bytes, over the %s bytes a jsonb value can hold', step.step_slug, input_size,
      pgflow._jsonb_limit_bytes()));
    return -1;
  end if;
  if step.required_input_pattern is not null or step.forbidden_input_pattern is not null
     or step.step_type = 'map' then
    step_input := pgflow._step_input(run_id, step.flow_slug, step.step_slug, run_input,
      step.deps_count);
  end if;
  if step.required_input_pattern is not null or step.forbidden_input_pattern is not null then
    seen_input := pgflow._unref_input(run_id, step_input, step.deps_count = 0);
    if seen_input is null then
      perform pgflow._fail_step(run_id, step.step_slug, format('ValueUnavailable: step %L '
        || 'cannot evaluate its condition: a value of its input is stored by reference where '
        || 'Postgres cannot read it (an external store, deleted, or over %s bytes); keep '
        || 'values that conditions read in the ''pg'' store', step.step_slug,
        pgflow._jsonb_limit_bytes()));
      return -1;
    end if;
    unmet := pgflow._unmet_condition(step, seen_input);
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
    end if;
    arr := pgflow._unref(run_id, arr);
    if arr is null then
      perform pgflow._fail_step(run_id, step.step_slug, format('ValueUnavailable: map step %L '
        || 'cannot split its array: it is stored by reference where Postgres cannot read it '
        || '(an external store, deleted, or over %s bytes); keep arrays that maps split in '
        || 'the ''pg'' store', step.step_slug, pgflow._jsonb_limit_bytes()));
      return -1;
    elsif jsonb_typeof(arr) is distinct from 'array' then
      perform pgflow._fail_step(run_id, step.step_slug, format(
        'TYPE_VIOLATION: map step %L expects an array %s but got %s: %s', step.step_slug,
        case when step.deps_count = 0 then 'as flow input' else 'from its dependency' end,
        coalesce(jsonb_typeof(arr), 'null'), left(coalesce(arr::text, 'null'), 10000)));
      return -1;
    end if;
    if jsonb_path_exists(arr, '$[*] ? (exists (@."$pgflow_ref"))') then
      select format('element %s: %s', e.n - 1, pgflow._check_ref(run_id, e.value)) into bad
      from jsonb_array_elements(arr) with ordinality as e(value, n)
      where pgflow._is_ref(e.value) and pgflow._check_ref(run_id, e.value) is not null
      order by e.n limit 1;
      if bad is not null then
        perform pgflow._fail_step(run_id, step.step_slug, format('InvalidReference: map step %L: '
          || '%s; the key "$pgflow_ref" is reserved for pgflow''s references (wrap such '
          || 'elements in another object)', step.step_slug, bad));
        return -1;
      end if;
    end if;
    inline_bytes := pgflow._inline_limit_bytes();
    n := jsonb_array_length(arr);
    if n = 0 then
      update pgflow.step_states ss set status = 'started', started_at = pgflow._now(),
        initial_tasks = 0, remaining_tasks = 0
      where ss.run_id = _start_step.run_id and ss.step_slug = step.step_slug;
      return least(pgflow._tasks_done(run_id, step.step_slug, 0, null, null), 1);
    end if;
  end if;

  available := pgflow._now() + make_interval(secs => coalesce(step.opt_start_delay, 0));
  if coalesce(step.opt_start_delay, 0) = 0 then
    tag := pgflow._queue_head(step.flow_slug, _start_step.priority);
  end if;
  insert into pgflow.step_tasks (run_id, step_slug, task_index, flow_slug, input,
    available_at, priority_at, input_bytes)
  select _start_step.run_id, step.step_slug, i, step.flow_slug,
    case when pg_column_size(e.value) > inline_bytes
      then pgflow._store_value(_start_step.run_id, e.value) else e.value end,
    available, tag + make_interval(secs => i / 1000.0), input_size
  from (
    select v.value, (v.ordinality - 1)::int as i
    from jsonb_array_elements(arr) with ordinality as v
    where step.step_type = 'map'
    union all
    select null, 0 where step.step_type = 'single'
  ) e;
  update pgflow.step_states ss set status = 'started', started_at = pgflow._now(),
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
