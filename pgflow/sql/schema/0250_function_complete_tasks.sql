-- complete_tasks(run_ids, step_slugs, task_indexes, outputs, attempts): report several
-- finished tasks in one transaction (parallel arrays; attempts may be NULL).
-- * Only a task still leased to the reported attempt ('started', and attempts_count equal
--   to the attempt when one is given) is completed; late, duplicate or stale reports change
--   nothing and never raise.
-- * Per step, remaining_tasks is decremented once per batch (not once per task); the last
--   task completes the step: a map's outputs are aggregated once, in task_index order.
-- * Returns the current row of every reported task.
-- Locks: the reported tasks in primary-key order, then step states, then the run rows.
create or replace function pgflow.complete_tasks(
  run_ids uuid[], step_slugs text[], task_indexes int[], outputs jsonb[],
  attempts int[] default null
)
returns setof pgflow.step_tasks
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  grp record;
  current_run uuid;
  finished int := 0;
begin
  perform 1 from pgflow.step_tasks t
  join unnest(run_ids, step_slugs, task_indexes) as r(run_id, step_slug, task_index)
    on t.run_id = r.run_id and t.step_slug = r.step_slug and t.task_index = r.task_index
  order by t.run_id, t.step_slug, t.task_index
  for update of t;

  for grp in
    with req as (
      select * from unnest(run_ids, step_slugs, task_indexes, outputs, attempts)
        as r(run_id, step_slug, task_index, output, attempt)
    ), done as (
      update pgflow.step_tasks t set
        status = 'completed', output = req.output, completed_at = now(), leased_until = null
      from req
      where t.run_id = req.run_id and t.step_slug = req.step_slug
        and t.task_index = req.task_index and t.status = 'started'
        and (req.attempt is null or t.attempts_count = req.attempt)
      returning t.run_id, t.step_slug, t.output
    )
    select d.run_id, d.step_slug, count(*)::int as n, (array_agg(d.output))[1] as output
    from done d group by d.run_id, d.step_slug order by d.run_id, d.step_slug
  loop
    if current_run is distinct from grp.run_id then
      if current_run is not null then
        perform pgflow._advance_run(current_run, finished);
      end if;
      current_run := grp.run_id;
      finished := 0;
    end if;
    finished := finished + pgflow._tasks_done(grp.run_id, grp.step_slug, grp.n, grp.output);
  end loop;
  if current_run is not null then
    perform pgflow._advance_run(current_run, finished);
  end if;

  return query
  select t.* from pgflow.step_tasks t
  join unnest(run_ids, step_slugs, task_indexes) as r(run_id, step_slug, task_index)
    on t.run_id = r.run_id and t.step_slug = r.step_slug and t.task_index = r.task_index;
end;
$$;

-- _tasks_done(run_id, step_slug, n, output): n tasks of a step completed. Decrements the
-- step's remaining tasks, or completes the step when these were the last. `output` is the
-- task output of a single step. Returns the number of steps completed (0 or 1).
create or replace function pgflow._tasks_done(run_id uuid, step_slug text, n int, output jsonb)
returns int
language plpgsql
volatile
set search_path = ''
as $$
declare
  step_type text;
begin
  update pgflow.step_states ss set remaining_tasks = ss.remaining_tasks - n
  where ss.run_id = _tasks_done.run_id and ss.step_slug = _tasks_done.step_slug
    and ss.status = 'started' and ss.remaining_tasks > n;
  if found then
    return 0;
  end if;
  select s.step_type into step_type from pgflow.step_states ss
  join pgflow.steps s on s.flow_slug = ss.flow_slug and s.step_slug = ss.step_slug
  where ss.run_id = _tasks_done.run_id and ss.step_slug = _tasks_done.step_slug;
  if step_type = 'map' then
    select jsonb_agg(t.output order by t.task_index) into output from pgflow.step_tasks t
    where t.run_id = _tasks_done.run_id and t.step_slug = _tasks_done.step_slug;
  end if;
  return pgflow._complete_step(run_id, step_slug, output);
end;
$$;

-- complete_task(run_id, step_slug, task_index, output, attempt): report one finished task
-- (pgflow's parameter names; `attempt` fences stale reports). Returns the task's row.
create or replace function pgflow.complete_task(
  run_id uuid, step_slug text, task_index int, output jsonb, attempt int default null
)
returns pgflow.step_tasks
language sql
volatile
security definer
set search_path = ''
as $$
  select * from pgflow.complete_tasks(array[run_id], array[step_slug], array[task_index],
    array[output], array[attempt]);
$$;
