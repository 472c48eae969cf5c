-- _complete_batch(run_ids, step_slugs, task_indexes, outputs, attempts): complete_tasks for a
-- batch of several small plain outputs (complete_tasks checks: at most 1 KB each, no
-- reference, no task twice, no NULL key), in a few set-based statements however many tasks
-- and runs the batch holds:
-- 1. one update completes the tasks still leased to the reported attempt (as complete_task
--    does for one: late, duplicate and stale reports change nothing);
-- 2. one update counts them off their steps, completing the steps left with no task (a
--    map's outputs are then aggregated by _map_done, a statement of its own);
-- 3. one statement resolves a dependency of each dependent of the completed steps and
--    starts those that need nothing evaluated (as _start_dependents does for one step), each
--    flow's queue head probed once per priority band; a fan-in it started records its
--    input's size in a statement of its own (see _input_size);
-- 4. one update counts the completed steps off their runs, completing the runs left with
--    none (locked first by a statement of their own: see _run_outputs). When a
--    dependent became ready that needs evaluating (a map, a condition, a start delay), the
--    runs go through _advance_run instead, one at a time in run order, which starts such
--    steps.
-- Then the run events, in each run's order (its steps' 'completed' events in step order,
-- each followed by the 'started' events of the dependents it was the last in the batch to
-- release, then 'run:completed'), and one wake-up per flow whose tasks were queued.
-- Returns the current row of every reported task (NULL for an unknown one) in key order.
-- Locks, each kind in key order, each kind after the one before: the tasks, their steps'
-- states, the dependents' states, the runs (the order of complete_task).
create or replace function pgflow._complete_batch(
  run_ids uuid[], step_slugs text[], task_indexes int[], outputs jsonb[], attempts int[]
)
returns setof pgflow.step_tasks
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
-- every statement joins the batch's keys to an index: by primary-key probes in key order (a
-- session's generic plan, made while a partition was nearly empty, could otherwise hash-join
-- a scan of every row, and lock rows in another order)
set plan_cache_mode = force_generic_plan
set enable_hashjoin = off
set enable_mergejoin = off
set enable_seqscan = off
as $$
declare
  done pgflow.step_tasks[];
  -- the steps this batch completed, in key order (a step set to NULL failed: _map_done)
  c_runs uuid[];
  c_steps text[];
  c_flows text[];
  c_types text[];
  -- the dependents it started, in run order, each after the last of its dependencies that
  -- the batch completed (a fan-in may have several)
  s_runs uuid[];
  s_steps text[];
  s_flows text[];
  s_after int[];  -- the index in c_* of that dependency
  scan_runs uuid[];  -- runs with a ready dependent left to _advance_run
  fan_runs uuid[];  -- the fan-ins it started (they record their input's size)
  fan_steps text[];
  -- the runs with a completed step, in run order, and how many steps each completed
  f_runs uuid[] := '{}'::uuid[];
  f_finished int[] := '{}'::int[];
  done_runs uuid[];  -- the runs the batch completes
  events jsonb[] := '{}'::jsonb[];
  j int := 1;
  flow text;
begin
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
  select array_agg(c.task order by (c.task).run_id, (c.task).step_slug, (c.task).task_index)
  into done
  from completed c;

  if done is not null then
    with g as (
      select t.run_id, t.step_slug, count(*)::int as n,
        (array_agg(t.output))[1] as output, (array_agg(t.output_bytes))[1] as output_bytes
      from unnest(done) t
      group by t.run_id, t.step_slug
      order by t.run_id, t.step_slug
    ),
    counted as (
      update pgflow.step_states ss set
        remaining_tasks = ss.remaining_tasks - g.n,
        status = case when ss.remaining_tasks = g.n then 'completed' else ss.status end,
        completed_at = case when ss.remaining_tasks = g.n then pgflow._now() end,
        output = case when ss.remaining_tasks = g.n and ss.step_type = 'single'
          then g.output end,
        output_bytes = case when ss.remaining_tasks = g.n and ss.step_type = 'single'
          then g.output_bytes end
      from g
      where ss.run_id = g.run_id and ss.step_slug = g.step_slug and ss.status = 'started'
      returning ss.run_id, ss.step_slug, ss.flow_slug, ss.step_type, ss.status
    )
    select array_agg(c.run_id order by c.run_id, c.step_slug),
      array_agg(c.step_slug order by c.run_id, c.step_slug),
      array_agg(c.flow_slug order by c.run_id, c.step_slug),
      array_agg(c.step_type order by c.run_id, c.step_slug)
    into c_runs, c_steps, c_flows, c_types
    from counted c
    where c.status = 'completed';
  end if;

  if c_runs is not null then
    if 'map' = any(c_types) then
      for i in 1 .. cardinality(c_runs) loop
        if c_types[i] = 'map' and not pgflow._map_done(c_runs[i], c_steps[i]) then
          c_steps[i] := null;  -- failed (too large), with its run: nothing else counts it
        end if;
      end loop;
    end if;

    with c as (
      select c.* from unnest(c_runs, c_steps, c_flows) with ordinality
        as c(run_id, step_slug, flow_slug, n)
      where c.step_slug is not null
    ),
    d as materialized (  -- each dependent, with how many of its dependencies this resolved
      select c.run_id, x.step_slug, min(c.flow_slug) as flow_slug, count(*)::int as resolved,
        max(c.n)::int as after, min(st.step_index) as step_index,
        bool_and(st.step_type = 'single'
          and st.required_input_pattern is null and st.forbidden_input_pattern is null
          and coalesce(st.opt_start_delay, 0) = 0) as plain,
        bool_and(st.deps_count > 1) as fan_in
      from c
      join pgflow.deps x on x.flow_slug = c.flow_slug and x.dep_slug = c.step_slug
      join pgflow.steps st on st.flow_slug = x.flow_slug and st.step_slug = x.step_slug
      group by c.run_id, x.step_slug
      order by c.run_id, x.step_slug
    ),
    released as (
      update pgflow.step_states ss set
        remaining_deps = ss.remaining_deps - d.resolved,
        status = case when d.plain and ss.remaining_deps = d.resolved then 'started'
          else ss.status end,
        started_at = case when d.plain and ss.remaining_deps = d.resolved then pgflow._now()
          else ss.started_at end,
        initial_tasks = case when d.plain and ss.remaining_deps = d.resolved then 1
          else ss.initial_tasks end,
        remaining_tasks = case when d.plain and ss.remaining_deps = d.resolved then 1
          else ss.remaining_tasks end
      from d
      where ss.run_id = d.run_id and ss.step_slug = d.step_slug and ss.status = 'created'
      returning ss.run_id, ss.step_slug, ss.status, ss.remaining_deps, d.flow_slug, d.after,
        d.step_index, d.fan_in
    ),
    bands as materialized (  -- the priority band of each run with a started step
      select u.run_id, u.priority from pgflow.runs u
      where u.run_id in (select r.run_id from released r where r.status = 'started')
    ),
    heads as materialized (  -- each flow's queue head in each band, probed once
      select h.flow_slug, h.priority, pgflow._queue_head(h.flow_slug, h.priority) as head
      from (select distinct r.flow_slug, b.priority
            from released r join bands b on b.run_id = r.run_id
            where r.status = 'started') h
    ),
    queued as (
      insert into pgflow.step_tasks (run_id, step_slug, task_index, flow_slug, available_at,
        priority_at)
      select r.run_id, r.step_slug, 0, r.flow_slug, pgflow._now(), h.head
      from released r
      join bands b on b.run_id = r.run_id
      join heads h on h.flow_slug = r.flow_slug and h.priority = b.priority
      where r.status = 'started'
    )
    select array_agg(r.run_id order by r.after, r.step_index) filter (where r.status = 'started'),
      array_agg(r.step_slug order by r.after, r.step_index) filter (where r.status = 'started'),
      array_agg(r.flow_slug order by r.after, r.step_index) filter (where r.status = 'started'),
      array_agg(r.after order by r.after, r.step_index) filter (where r.status = 'started'),
      array_agg(distinct r.run_id) filter (where r.status = 'created' and r.remaining_deps = 0),
      array_agg(r.run_id) filter (where r.status = 'started' and r.fan_in),
      array_agg(r.step_slug) filter (where r.status = 'started' and r.fan_in)
    into s_runs, s_steps, s_flows, s_after, scan_runs, fan_runs, fan_steps
    from released r;
    if fan_runs is not null then  -- a statement of its own: see _input_size
      update pgflow.step_tasks t set
        input_bytes = pgflow._input_size(t.run_id, t.flow_slug, t.step_slug)
      from unnest(fan_runs, fan_steps) as f(run_id, step_slug)
      where t.run_id = f.run_id and t.step_slug = f.step_slug and t.task_index = 0;
    end if;

    -- the steps' events (each completed step, then the dependents it was the last in the
    -- batch to release), and the steps each run completed (c_* come in run order)
    for i in 1 .. cardinality(c_runs) loop
      if c_steps[i] is not null then
        if f_runs[cardinality(f_runs)] is distinct from c_runs[i] then
          f_runs := f_runs || c_runs[i];
          f_finished := f_finished || 1;
        else
          f_finished[cardinality(f_finished)] := f_finished[cardinality(f_finished)] + 1;
        end if;
        events := events || pgflow._event(c_runs[i], c_flows[i],
          'step:' || c_steps[i] || ':completed', 'completed', c_steps[i]);
        while j <= coalesce(cardinality(s_runs), 0) and s_after[j] = i loop
          events := events || pgflow._event(s_runs[j], s_flows[j],
            'step:' || s_steps[j] || ':started', 'started', s_steps[j]);
          j := j + 1;
        end loop;
      end if;
    end loop;

    if scan_runs is null then
      -- the runs are locked first, in key order, by a statement of its own that finds those
      -- the batch completes: their outputs are read by the next statement (_run_outputs)
      select array_agg(r.run_id order by r.run_id) filter (where r.remaining_steps = c.finished)
      into done_runs
      from (select r.run_id, r.remaining_steps from pgflow.runs r
            where r.run_id = any(f_runs) and r.status = 'started'
            order by r.run_id
            for no key update) r
      join unnest(f_runs, f_finished) as c(run_id, finished) on c.run_id = r.run_id;
      with advanced as (
        update pgflow.runs r set
          remaining_steps = r.remaining_steps - c.finished,
          status = case when r.remaining_steps = c.finished then 'completed' else r.status end,
          completed_at = case when r.remaining_steps = c.finished then pgflow._now() end,
          finished_at = case when r.remaining_steps = c.finished then pgflow._now() end,
          output = o.output,
          output_bytes = o.bytes
        from unnest(f_runs, f_finished) as c(run_id, finished)
        left join pgflow._run_outputs(done_runs) o on o.run_id = c.run_id
        where r.run_id = c.run_id and r.status = 'started'
        returning r.run_id, r.flow_slug, r.status
      )
      select events || coalesce(array_agg(pgflow._event(a.run_id, a.flow_slug, 'run:completed',
          'completed') order by a.run_id), '{}'::jsonb[])
      into events
      from advanced a
      where a.status = 'completed';
      perform pgflow._emit_events(events);
    else
      -- _advance_run emits the events of the steps it starts and of the run: the steps'
      -- events go first
      perform pgflow._emit_events(events);
      for i in 1 .. cardinality(f_runs) loop
        perform pgflow._advance_run(f_runs[i], f_finished[i], f_runs[i] = any(scan_runs));
      end loop;
    end if;
    if s_flows is not null then  -- a statement only when a step was started
      for flow in select distinct s.flow from unnest(s_flows) as s(flow) order by 1 loop
        perform pgflow._wake_workers(flow);
      end loop;
    end if;
  end if;

  -- the reported tasks as they are now, in key order: the ones completed above, and the
  -- others read again (a statement of their own: their current rows)
  return query
    select (r.task).* from (
      select d as task, d.run_id, d.step_slug, d.task_index
      from unnest(done) d
      union all
      select x, u.run_id, u.step_slug, u.task_index
      from unnest(run_ids, step_slugs, task_indexes) as u(run_id, step_slug, task_index)
      left join pgflow.step_tasks x on x.run_id = u.run_id and x.step_slug = u.step_slug
        and x.task_index = u.task_index
      where not exists (select 1 from unnest(done) d
                        where d.run_id = u.run_id and d.step_slug = u.step_slug
                          and d.task_index = u.task_index)
    ) r
    order by r.run_id, r.step_slug, r.task_index;
end;
$$;
