-- complete_tasks(run_ids, step_slugs, task_indexes, outputs, attempts): report several
-- finished tasks in one transaction (parallel arrays; attempts may be NULL).
-- * Only a task still leased to the reported attempt ('started', and attempts_count equal
--   to the attempt when one is given) is completed; late, duplicate or stale reports change
--   nothing and never raise.
-- * Per step, remaining_tasks is decremented once per batch (not once per task); the last
--   task completes the step: a map's outputs are aggregated once, in task_index order.
-- * Returns the current row of every reported task, in key order.
-- * Large values (docs/large-values.md): an output that is a reference ({"$pgflow_ref": ...},
--   from seal_blob) must name a stored value of the task's run, else the attempt fails with
--   error_type InvalidReference (the key is reserved); its size counts against
--   max_payload_bytes. An inline output larger than inline_limit_bytes is stored by
--   reference here (_store_value) once the task is known to be leased to that attempt.
-- A batch of several small plain outputs (the common case: no size limit to check, nothing
-- to store by reference, no task twice) is completed by _complete_batch in a few set-based
-- statements; otherwise (one task too) each task is handled in statements of its own, and
-- each step and run as the tasks complete it.
-- Locks: the reported tasks in primary-key order, then step states, then the run rows.
create or replace function pgflow.complete_tasks(
  run_ids uuid[], step_slugs text[], task_indexes int[], outputs jsonb[],
  attempts int[] default null
)
returns setof pgflow.step_tasks
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
-- every statement inside is an index lookup: a generic plan is right and saves re-planning
set plan_cache_mode = force_generic_plan
set enable_seqscan = off
as $$
declare
  req record;
  t pgflow.step_tasks;
  cur_run uuid;
  cur_step text;
  n int := 0;
  last_output jsonb;
  last_bytes bigint;
  size bigint;
  finished int := 0;
  scan boolean := false;
  done int;
  max_bytes bigint := pgflow._max_payload_bytes();
  inline_bytes bigint;
  val jsonb;
  problem text;
  batch boolean := false;
begin
  if cardinality(run_ids) > 1 then
    select coalesce(bool_and(pg_column_size(u.output) <= least(1024, max_bytes)
             and not (jsonb_typeof(u.output) = 'object' and u.output ? '$pgflow_ref')
             and u.run_id is not null and u.step_slug is not null
             and u.task_index is not null), false)
           and count(*) = count(distinct (u.run_id, u.step_slug, u.task_index))
    into batch
    from unnest(run_ids, step_slugs, task_indexes, outputs)
      as u(run_id, step_slug, task_index, output);
  end if;
  if batch then
    return query select * from pgflow._complete_batch(run_ids, step_slugs, task_indexes,
      outputs, attempts);
    return;
  end if;
  -- One primary-key update per task, in primary-key order, so concurrent reports lock rows
  -- in the same order. A last row without a task closes the last step and run.
  for req in
    select * from (
      select u.*, false from unnest(run_ids, step_slugs, task_indexes, outputs, attempts) as u
      union all
      select null::uuid, null::text, null::int, null::jsonb, null::int, true
    ) as r(run_id, step_slug, task_index, output, attempt, last)
    order by r.last, r.run_id, r.step_slug, r.task_index
  loop
    if not req.last then
      -- the reported value is not compressed yet: this is its full size
      size := pg_column_size(req.output)::bigint;
      if size > max_bytes then
        -- an oversized output is a failed attempt, not a completion
        return next pgflow._fail_task(req.run_id, req.step_slug, req.task_index, req.attempt,
          format('output is %s bytes, over the limit of %s bytes (setting max_payload_bytes)',
            size, max_bytes), 'OutputTooLarge', null);
        continue;
      end if;
      val := req.output;
      if jsonb_typeof(val) = 'object' and val ? '$pgflow_ref' then
        problem := pgflow._check_ref(req.run_id, val);
        if problem is not null or (val ->> 'size')::bigint > max_bytes then
          return next pgflow._fail_task(req.run_id, req.step_slug, req.task_index, req.attempt,
            case when problem is not null then format('step %L: the output looks like a '
              || 'reference to a stored value but is not one: %s; the key "$pgflow_ref" is '
              || 'reserved for pgflow''s references (wrap such a value in another object)',
              req.step_slug, problem)
            else format('output is %s bytes, over the limit of %s bytes (setting '
              || 'max_payload_bytes)', val ->> 'size', max_bytes) end,
            case when problem is null then 'OutputTooLarge' else 'InvalidReference' end, null);
          continue;
        end if;
      elsif size > 1024 then  -- the smallest inline limit: no lookup for small outputs
        inline_bytes := coalesce(inline_bytes, pgflow._inline_limit_bytes());
        -- stored once the task is known to be leased to this attempt (not for a stale report)
        if size > inline_bytes then
          perform 1 from pgflow.step_tasks x
          where x.run_id = req.run_id and x.step_slug = req.step_slug
            and x.task_index = req.task_index and x.status = 'started'
            and (req.attempt is null or x.attempts_count = req.attempt)
          for update;
          if found then
            val := pgflow._store_value(req.run_id, val);
            size := pg_column_size(val)::bigint;
          end if;
        end if;
      end if;
      update pgflow.step_tasks x set
        status = 'completed', output = val, completed_at = pgflow._now(), leased_until = null,
        output_bytes = size
      where x.run_id = req.run_id and x.step_slug = req.step_slug
        and x.task_index = req.task_index and x.status = 'started'
        and (req.attempt is null or x.attempts_count = req.attempt)
      returning * into t;
      if not found then
        -- not leased to the reported attempt: returned as it is
        select * into t from pgflow.step_tasks x
        where x.run_id = req.run_id and x.step_slug = req.step_slug
          and x.task_index = req.task_index;
        return next t;
        continue;
      end if;
      return next t;
    end if;
    if n > 0 and (req.last or cur_run <> req.run_id or cur_step <> req.step_slug) then
      done := pgflow._tasks_done(cur_run, cur_step, n, last_output, last_bytes);
      finished := finished + least(done, 1);
      scan := scan or done = 2;
      n := 0;
      if req.last or cur_run <> req.run_id then
        if finished > 0 then
          perform pgflow._advance_run(cur_run, finished, scan);
        end if;
        finished := 0;
        scan := false;
      end if;
    end if;
    exit when req.last;
    cur_run := req.run_id;
    cur_step := req.step_slug;
    n := n + 1;
    last_output := val;
    last_bytes := size;
  end loop;
end;
$$;

-- _tasks_done(run_id, step_slug, n, output, output_bytes): n tasks of a step completed. One
-- update decrements the step's remaining tasks or, when these were the last, completes the
-- step (`output` is a single step's task output; a map's outputs are aggregated by
-- _map_done, [] for an empty map started with n = 0), then emits its 'completed' event and
-- releases its dependents, starting at once those that need nothing evaluated
-- (_start_dependents, which wakes the flow's workers when it queued a task).
-- Returns 0 when the step is not done, 1 when it completed, 2 when it also made a
-- dependent ready that is not started yet (the caller then has steps to start).
create or replace function pgflow._tasks_done(
  run_id uuid, step_slug text, n int, output jsonb, output_bytes bigint
)
returns int
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
set enable_seqscan = off
as $$
declare
  new_status text;
  flow text;
  kind text;
begin
  update pgflow.step_states ss set
    remaining_tasks = ss.remaining_tasks - n,
    status = case when ss.remaining_tasks = n then 'completed' else ss.status end,
    completed_at = case when ss.remaining_tasks = n then pgflow._now() end,
    output = case when ss.remaining_tasks = n and ss.step_type = 'single'
      then _tasks_done.output end,
    output_bytes = case when ss.remaining_tasks = n and ss.step_type = 'single'
      then _tasks_done.output_bytes end
  where ss.run_id = _tasks_done.run_id and ss.step_slug = _tasks_done.step_slug
    and ss.status = 'started'
  returning ss.status, ss.flow_slug, ss.step_type into new_status, flow, kind;
  if new_status is distinct from 'completed'
     or (kind = 'map' and not pgflow._map_done(run_id, step_slug)) then
    return 0;
  end if;
  perform pgflow._emit(run_id, flow, 'step:' || step_slug || ':completed', 'completed', step_slug);
  return 1 + least(pgflow._start_dependents(run_id, flow, step_slug), 1);
end;
$$;

-- _map_done(run_id, step_slug): a map step just completed (its step-state row is locked):
-- store its task outputs, aggregated in task_index order. A statement of its own, never
-- inside the counting UPDATE: when that UPDATE waited for a concurrent completion's row
-- lock, READ COMMITTED re-checks the row but its sub-selects keep the statement's old
-- snapshot, which would miss the output the other transaction just committed; this
-- statement's snapshot sees it. Outputs that total more than a jsonb value can hold fail
-- the step (and the run) with OutputTooLarge instead of raising in the reporting
-- transaction: returns false then.
create or replace function pgflow._map_done(run_id uuid, step_slug text)
returns boolean
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
set enable_seqscan = off
as $$
declare
  total bigint;
begin
  select coalesce(sum(coalesce(t.output_bytes, pg_column_size(t.output))), 0)::bigint
  into total
  from pgflow.step_tasks t
  where t.run_id = _map_done.run_id and t.step_slug = _map_done.step_slug;
  if total > pgflow._jsonb_limit_bytes() then
    update pgflow.step_states ss set status = 'started', completed_at = null
    where ss.run_id = _map_done.run_id and ss.step_slug = _map_done.step_slug;
    perform pgflow._fail_step(run_id, step_slug, format(
      'OutputTooLarge: map step %L: its task outputs total %s bytes, over the %s bytes a '
      || 'jsonb value can hold; return smaller elements or store them elsewhere and return '
      || 'references', step_slug, total, pgflow._jsonb_limit_bytes()));
    return false;
  end if;
  update pgflow.step_states ss set output_bytes = total, output = (
    select coalesce(jsonb_agg(t.output order by t.task_index), '[]'::jsonb)
    from pgflow.step_tasks t
    where t.run_id = ss.run_id and t.step_slug = ss.step_slug)
  where ss.run_id = _map_done.run_id and ss.step_slug = _map_done.step_slug;
  return true;
end;
$$;

-- complete_task(run_id, step_slug, task_index, output, attempt): report one finished task
-- (pgflow's parameter names; `attempt` fences stale reports). Returns the task's row.
create or replace function pgflow.complete_task(
  run_id uuid, step_slug text, task_index int, output jsonb, attempt int default null
)
returns pgflow.step_tasks
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
set enable_seqscan = off
as $$
declare
  result pgflow.step_tasks;
begin
  select * into result from pgflow.complete_tasks(array[run_id], array[step_slug],
    array[task_index], array[output], array[attempt]);
  return result;
end;
$$;
