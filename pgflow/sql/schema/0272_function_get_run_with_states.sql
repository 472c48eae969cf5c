-- get_run_with_states(run_id): {"run": {...}, "steps": [{step_slug, status, output,
-- error_message, skip_reason, attempts, tasks: {status: count}, timestamps ...}]} in
-- definition order. For inspection and clients; unknown run: PGF07.
-- Reading never fails because a run is big: values are inlined in reading order (the run
-- input, each step's output in step order, then the run output) while their sizes add up
-- to at most the read_budget_bytes setting (default 64 MiB); every value past that is
-- returned as {"$truncated": true, "bytes": N} (N its size). Sizes are the ones recorded
-- when the values were written, so nothing large is read to be measured.
create or replace function pgflow.get_run_with_states(run_id uuid)
returns jsonb
language plpgsql
stable
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  budget bigint := pgflow._setting('read_budget_bytes');
  r record;
  used bigint;
  steps jsonb;
  steps_used bigint;
begin
  select x.run_id, x.flow_slug, x.status, x.error_message, x.remaining_steps,
    x.started_at, x.completed_at, x.failed_at, x.cancelled_at, x.finished_at,
    x.flow_checksum,
    coalesce(x.input_bytes, pg_column_size(x.input)) as input_size,
    coalesce(x.output_bytes, pg_column_size(x.output), 0) as output_size
  into r
  from pgflow.runs x where x.run_id = get_run_with_states.run_id;
  if not found then
    perform pgflow._raise('PGF07', format('unknown run %s', run_id),
      'Check the run id; `pgflow runs` lists recent runs.');
  end if;
  used := case when r.input_size <= budget then r.input_size else 0 end;

  select coalesce(jsonb_agg(jsonb_build_object(
      'run_id', ss.run_id, 'step_slug', ss.step_slug, 'flow_slug', ss.flow_slug,
      'step_index', ss.step_index, 'status', ss.status,
      'remaining_deps', ss.remaining_deps, 'remaining_tasks', ss.remaining_tasks,
      'initial_tasks', ss.initial_tasks,
      'output', case when ss.output is null then null
                     when used + ss.running <= budget then ss.output
                     else pgflow._truncated(ss.size) end,
      'output_bytes', ss.size,
      'error_message', ss.error_message, 'skip_reason', ss.skip_reason,
      'created_at', ss.created_at, 'started_at', ss.started_at,
      'completed_at', ss.completed_at, 'failed_at', ss.failed_at,
      'skipped_at', ss.skipped_at, 'cancelled_at', ss.cancelled_at,
      'step_type', s.step_type,
      'attempts', coalesce(tk.attempts, 0),
      'tasks', coalesce(tk.by_status, '{}'::jsonb),
      'error_type', tk.error_type,
      'error_traceback', tk.error_traceback
    ) order by ss.step_index), '[]'::jsonb),
    coalesce(max(ss.running) filter (where used + ss.running <= budget), 0)
  into steps, steps_used
  from (
    select y.*, coalesce(y.output_bytes, pg_column_size(y.output), 0) as size,
      (sum(coalesce(y.output_bytes, pg_column_size(y.output), 0))
        over (order by y.step_index))::bigint as running
    from pgflow.step_states y
    where y.run_id = get_run_with_states.run_id
  ) ss
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
  ) tk on true;
  used := used + steps_used;

  return jsonb_build_object('run', jsonb_build_object(
      'run_id', r.run_id, 'flow_slug', r.flow_slug, 'status', r.status,
      'input', (select case when r.input_size <= budget then x.input
                            else pgflow._truncated(r.input_size) end
                from pgflow.runs x where x.run_id = r.run_id),
      'output', (select case when x.output is null then null
                             when used + r.output_size <= budget then x.output
                             else pgflow._truncated(r.output_size) end
                 from pgflow.runs x where x.run_id = r.run_id),
      'input_bytes', r.input_size, 'output_bytes', r.output_size,
      'error_message', r.error_message, 'remaining_steps', r.remaining_steps,
      'started_at', r.started_at, 'completed_at', r.completed_at, 'failed_at', r.failed_at,
      'cancelled_at', r.cancelled_at, 'finished_at', r.finished_at,
      'flow_checksum', r.flow_checksum),
    'steps', steps);
end;
$$;
