-- complete_tasks(run_ids, step_slugs, task_indexes, outputs, attempts): report several
-- finished tasks in one transaction (parallel arrays; attempts may be NULL).
-- * Only a task still leased to the reported attempt ('started', and attempts_count equal
--   to the attempt when one is given) is completed; late, duplicate or stale reports change
--   nothing and never raise.
-- * Per step, remaining_tasks is decremented once per batch (not once per task); the last
--   task completes the step: a map's outputs are aggregated once, in task_index order.
-- * Returns the current row of every reported task.
-- * Large values (docs/large-values.md): an output that is a reference ({"$pgflow_ref": ...},
--   from seal_blob) must name a stored value of the task's run, else the attempt fails with
--   error_type InvalidReference (the key is reserved); its size counts against
--   max_payload_bytes. An inline output larger than inline_limit_bytes is stored by
--   reference here (_store_value) once the task is known to be leased to that attempt.
-- Locks: the reported tasks in primary-key order, then step states, then the run rows.
-- The fair-queuing tag of the dependents it starts (_queue_head) is probed at most once per
-- flow per call (for runs of priority 0), when the first dependent starts, not once per
-- started step: the call's time (now()) is one, and the tags it gives are that head, so its
-- own inserts never move it; a concurrent claim that moves it meanwhile only leaves these
-- tasks one claim nearer the front, as ties already do.
-- The workers of a flow whose tasks it queued are woken once per call (_wake_workers, at
-- the end: the notification is sent at commit wherever it is made), not once per step.
create or replace function pgflow.complete_tasks(
  run_ids uuid[], step_slugs text[], task_indexes int[], outputs jsonb[],
  attempts int[] default null
)
returns setof pgflow.step_tasks
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
-- every statement inside is an index lookup: a generic plan is right and saves re-planning;
-- the batch's update joins the reported keys to the tasks, and must do it by primary-key
-- probes in key order (a session's generic plan, made while a partition was nearly empty,
-- could otherwise hash-join a scan of every task)
set plan_cache_mode = force_generic_plan
set enable_hashjoin = off
set enable_mergejoin = off
set enable_seqscan = off
as $$
declare
  req record;
  t pgflow.step_tasks;
  cur_run uuid;
  cur_step text;
  cur_flow text;
  head_flow text;
  head timestamptz;
  dependents record;  -- _start_dependents' (head, waiting, started, leaf)
  wake text[] := '{}'::text[];  -- flows whose workers to wake once, at the end
  -- run events to emit once, at the end (_emit_events), in the order they happened; they
  -- are emitted earlier when a function that emits its own is called for the same run.
  -- Rows come in run order and a run's events are gathered when its rows are done, so a
  -- run's waiting events are always the last ones: the run of the last is the one to check.
  events jsonb[] := '{}'::jsonb[];
  slug text;
  -- 'flow.step' of the steps without dependents met so far (slugs never hold a dot:
  -- is_valid_slug, a check constraint of flows and steps)
  leaves text[] := '{}'::text[];
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
  rows refcursor;
begin
  -- A batch of several small plain outputs (the common case: no size limit to check,
  -- nothing to store by reference, no key twice) is completed by one update; otherwise
  -- (one task too) each task is handled in a statement of its own. Either way rows are
  -- locked in primary-key order, so concurrent reports lock them in the same order.
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
  -- Rows, in primary-key order: 'done' (completed by the batch's update), 'stale' (not
  -- leased to the reported attempt: changed by nothing, returned as they are) or 'report'
  -- (to handle one by one), and a last row without a task that closes the last step and
  -- run.
  if batch then
    open rows for
      with reported as materialized (
        select u.* from unnest(run_ids, step_slugs, task_indexes, outputs, attempts)
          as u(run_id, step_slug, task_index, output, attempt)
        order by u.run_id, u.step_slug, u.task_index
      ),
      completed as (
        update pgflow.step_tasks x set
          status = 'completed', output = r.output, completed_at = pgflow._now(),
          leased_until = null, output_bytes = pg_column_size(r.output)
        from reported r
        where x.run_id = r.run_id and x.step_slug = r.step_slug
          and x.task_index = r.task_index and x.status = 'started'
          and (r.attempt is null or x.attempts_count = r.attempt)
        returning x as task
      )
      select * from (
        select c.task, (c.task).run_id, (c.task).step_slug, (c.task).task_index,
          null::jsonb, null::int, 'done', false
        from completed c
        union all
        select null, r.run_id, r.step_slug, r.task_index, null, null, 'stale', false
        from reported r
        where not exists (select 1 from completed c
                          where (c.task).run_id = r.run_id
                            and (c.task).step_slug = r.step_slug
                            and (c.task).task_index = r.task_index)
        union all
        select null, null, null, null, null, null, 'last', true
      ) as r(task, run_id, step_slug, task_index, output, attempt, kind, last)
      order by r.last, r.run_id, r.step_slug, r.task_index;
  else
    -- a statement of its own: this one does not set up the batch's update (for one task,
    -- opening every partition of the tasks for it costs more than the update)
    open rows for
      select * from (
        select null::pgflow.step_tasks, u.*, 'report', false
        from unnest(run_ids, step_slugs, task_indexes, outputs, attempts) as u
        union all
        select null, null, null, null, null, null, 'last', true
      ) as r(task, run_id, step_slug, task_index, output, attempt, kind, last)
      order by r.last, r.run_id, r.step_slug, r.task_index;
  end if;
  loop
    fetch rows into req;
    exit when not found;
    if req.kind = 'done' then
      t := req.task;
      val := t.output;
      size := t.output_bytes;
    elsif req.kind = 'report' then
      -- _fail_task emits the run's events itself
      if (events[cardinality(events)] ->> 'run_id')::uuid = req.run_id then
        perform pgflow._emit_events(events);
        events := '{}'::jsonb[];
      end if;
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
    end if;
    if req.kind = 'stale' or (req.kind = 'report' and not found) then
      -- not leased to the reported attempt: returned as it is now (a statement of its own,
      -- so not the batch update's snapshot)
      select * into t from pgflow.step_tasks x
      where x.run_id = req.run_id and x.step_slug = req.step_slug
        and x.task_index = req.task_index;
      return next t;
      continue;
    elsif not req.last then
      return next t;
    end if;
    if n > 0 and (req.last or cur_run <> req.run_id or cur_step <> req.step_slug) then
      if head_flow is distinct from cur_flow then
        head_flow := cur_flow;
        head := null;
      end if;
      -- a map too large to aggregate fails its step here, emitting the run's events
      if (events[cardinality(events)] ->> 'run_id')::uuid = cur_run then
        perform pgflow._emit_events(events);
        events := '{}'::jsonb[];
      end if;
      done := pgflow._tasks_done(cur_run, cur_step, n, last_output, last_bytes, false);
      if done = 1 then
        events := events || pgflow._event(cur_run, cur_flow,
          'step:' || cur_step || ':completed', 'completed', cur_step);
      end if;
      -- a step known to have no dependents (a batch of one-step runs) is not looked up again
      if done = 1 and not (cur_flow || '.' || cur_step) = any(leaves) then
        dependents := pgflow._start_dependents(cur_run, cur_flow, cur_step, head, false);
        if dependents.leaf then
          leaves := leaves || (cur_flow || '.' || cur_step);
        end if;
        head := dependents.head;
        done := 1 + least(dependents.waiting, 1);
        foreach slug in array dependents.started loop
          events := events
            || pgflow._event(cur_run, cur_flow, 'step:' || slug || ':started', 'started', slug);
        end loop;
        if cardinality(dependents.started) > 0 and not cur_flow = any(wake) then
          wake := wake || cur_flow;
        end if;
      end if;
      finished := finished + least(done, 1);
      scan := scan or done = 2;
      n := 0;
      if req.last or cur_run <> req.run_id then
        if scan then  -- starting steps emits their events
          perform pgflow._emit_events(events);
          events := '{}'::jsonb[];
        end if;
        if finished > 0 then
          if pgflow._advance_run(cur_run, finished, scan, false) = 'completed' then
            events := events || pgflow._event(cur_run, cur_flow, 'run:completed', 'completed');
          end if;
        end if;
        finished := 0;
        scan := false;
      end if;
    end if;
    if req.last then
      perform pgflow._emit_events(events);
      foreach slug in array wake loop
        perform pgflow._wake_workers(slug);
      end loop;
      exit;
    end if;
    cur_run := req.run_id;
    cur_step := req.step_slug;
    cur_flow := t.flow_slug;
    n := n + 1;
    last_output := val;
    last_bytes := size;
  end loop;
  close rows;
end;
$$;

-- _tasks_done(run_id, step_slug, n, output): n tasks of a step completed. One update
-- decrements the step's remaining tasks or, when these were the last, completes the step
-- (a map's outputs aggregated once, in task_index order, [] for an empty map started with
-- n = 0; `output` is a single step's task output), then releases its dependents, starting
-- at once those that need nothing evaluated (_start_dependents). With `release` false the
-- step's 'step:<slug>:completed' event and its dependents are left to the caller
-- (complete_tasks gathers a batch's events and calls _start_dependents itself).
-- Returns 0 when the step is not done, 1 when it completed, 2 when it also made a
-- dependent ready that is not started yet (the caller then has steps to start).
-- A map whose outputs total more than a jsonb value can hold fails its step (and the run)
-- with OutputTooLarge instead of raising in the reporting transaction.
-- A map's outputs are aggregated by a second statement, never inside the counting UPDATE:
-- when that UPDATE waited for a concurrent completion's row lock, READ COMMITTED re-checks
-- the row but its sub-selects keep the statement's old snapshot, which would miss the
-- output the other transaction just committed. The next statement's snapshot sees it.
create or replace function pgflow._tasks_done(
  run_id uuid, step_slug text, n int, output jsonb, output_bytes bigint,
  release boolean default true
)
returns int
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
as $$
declare
  new_status text;
  flow text;
  kind text;
  total bigint;
  dependents record;  -- _start_dependents' (head, waiting, started)
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
  if new_status is distinct from 'completed' then
    return 0;
  end if;
  if kind = 'map' then
    select coalesce(sum(coalesce(t.output_bytes, pg_column_size(t.output))), 0)::bigint
    into total
    from pgflow.step_tasks t
    where t.run_id = _tasks_done.run_id and t.step_slug = _tasks_done.step_slug;
    if total > pgflow._jsonb_limit_bytes() then
      update pgflow.step_states ss set status = 'started', completed_at = null
      where ss.run_id = _tasks_done.run_id and ss.step_slug = _tasks_done.step_slug;
      perform pgflow._fail_step(run_id, step_slug, format(
        'OutputTooLarge: map step %L: its task outputs total %s bytes, over the %s bytes a '
        || 'jsonb value can hold; return smaller elements or store them elsewhere and return '
        || 'references', step_slug, total, pgflow._jsonb_limit_bytes()));
      return 0;
    end if;
    update pgflow.step_states ss set output_bytes = total, output = (
      select coalesce(jsonb_agg(t.output order by t.task_index), '[]'::jsonb)
      from pgflow.step_tasks t
      where t.run_id = ss.run_id and t.step_slug = ss.step_slug)
    where ss.run_id = _tasks_done.run_id and ss.step_slug = _tasks_done.step_slug;
  end if;
  if not release then
    return 1;
  end if;
  perform pgflow._emit(run_id, flow, 'step:' || step_slug || ':completed', 'completed', step_slug);
  dependents := pgflow._start_dependents(run_id, flow, step_slug, null);
  if cardinality(dependents.started) > 0 then
    perform pgflow._wake_workers(flow);
  end if;
  return 1 + least(dependents.waiting, 1);
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
as $$
declare
  result pgflow.step_tasks;
begin
  select * into result from pgflow.complete_tasks(array[run_id], array[step_slug],
    array[task_index], array[output], array[attempt]);
  return result;
end;
$$;
