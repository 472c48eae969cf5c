-- _run_outputs(run_ids): each of these runs' output, {leaf_slug: output} of its completed
-- leaf steps in step order, and its size. Leaves are inlined while they fit in one jsonb
-- value; any past that are stored as {"$truncated": true, "bytes": N} (their steps keep the
-- full output).
-- Read only once the run rows are locked: every other transaction that completed a leaf
-- of these runs updated the run row too, so it has committed by then. VOLATILE on purpose:
-- in READ COMMITTED its query takes a snapshot of its own when called, so it sees that
-- leaf even from an update that waited for the run row (_advance_run), where a sub-select
-- would keep the update's older snapshot and miss it. A batch locks its runs first, in a
-- statement of its own, and calls it once in the update (_complete_batch).
create or replace function pgflow._run_outputs(run_ids uuid[])
returns table (run_id uuid, output jsonb, bytes bigint)
language sql
volatile
rows 10  -- a batch's worth, as for unnest: the default 1000 would plan a scan of every run
set search_path = pg_catalog, pg_temp
set enable_seqscan = off
as $$
  select u.run_id, o.output, o.bytes
  from unnest(run_ids) as u(run_id)
  cross join lateral (
    select coalesce(jsonb_object_agg(l.step_slug, case
             when l.running <= pgflow._jsonb_limit_bytes() then l.output
             else pgflow._truncated(l.size) end),
           '{}'::jsonb) as output,
           coalesce(sum(l.size) filter (where l.running <= pgflow._jsonb_limit_bytes()), 0)
             as bytes
    from (
      select ss.step_slug, ss.output, coalesce(ss.output_bytes, pg_column_size(ss.output), 0)
          as size,
        sum(coalesce(ss.output_bytes, pg_column_size(ss.output), 0))
          over (order by ss.step_index) as running
      from pgflow.step_states ss
      where ss.run_id = u.run_id and ss.status = 'completed'
        and not exists (select 1 from pgflow.deps d
                        where d.flow_slug = ss.flow_slug and d.dep_slug = ss.step_slug)
    ) l
  ) o
$$;

-- _advance_run(run_id, finished, scan): with `scan`, start every step whose dependencies
-- are resolved (again and again while empty maps and skips resolve more); then count
-- `finished` (steps the caller completed or skipped) plus those finished here off the run's
-- remaining steps, completing the run when none remain: its output is {leaf_slug: output}
-- of its completed leaf steps (leaves past what one jsonb value holds are truncated markers).
-- The run row is locked last, by one update. Returns the run's status after that update
-- (NULL when it changed nothing).
create or replace function pgflow._advance_run(run_id uuid, finished int, scan boolean)
returns text
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
set enable_seqscan = off
as $$
declare
  run_input jsonb;
  run_priority int;
  step pgflow.steps;
  progressed boolean := scan;
  result int;
  run_status text;
  flow text;
begin
  if scan then
    select r.input, r.priority into run_input, run_priority
    from pgflow.runs r where r.run_id = _advance_run.run_id;
  end if;
  while progressed loop
    progressed := false;
    for step in
      select s.* from pgflow.step_states ss
      join pgflow.steps s on s.flow_slug = ss.flow_slug and s.step_slug = ss.step_slug
      where ss.run_id = _advance_run.run_id and ss.status = 'created' and ss.remaining_deps = 0
      order by s.step_index
    loop
      result := pgflow._start_step(run_id, step, run_input, run_priority);
      if result < 0 then
        return null;
      end if;
      finished := finished + result;
      progressed := progressed or result > 0;
    end loop;
  end loop;

  -- One update counts the steps off and, when none remain, stores the output
  -- (_run_outputs, which reads the leaves in a snapshot of its own: see there).
  update pgflow.runs r set
    remaining_steps = r.remaining_steps - finished,
    status = case when r.remaining_steps = finished then 'completed' else r.status end,
    completed_at = case when r.remaining_steps = finished then pgflow._now() end,
    finished_at = case when r.remaining_steps = finished then pgflow._now() end,
    (output, output_bytes) = (select o.output, o.bytes
                              from pgflow._run_outputs(array[r.run_id]) o
                              where r.remaining_steps = finished)
  where r.run_id = _advance_run.run_id and r.status = 'started'
    and (finished > 0 or r.remaining_steps = 0)
  returning r.status, r.flow_slug into run_status, flow;
  if run_status = 'completed' then
    perform pgflow._emit(run_id, flow, 'run:completed', 'completed');
  end if;
  return run_status;
end;
$$;
