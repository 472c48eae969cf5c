-- get_run_with_states(run_id): {"run": {...}, "steps": [{step_slug, status, output,
-- error_message, skip_reason, attempts, tasks: {status: count}, timestamps ...}]} in
-- definition order. For inspection and clients; unknown run: PGF07.
create or replace function pgflow.get_run_with_states(run_id uuid)
returns jsonb
language plpgsql
stable
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  result jsonb;
begin
  select jsonb_build_object('run', to_jsonb(r), 'steps', coalesce((
    select jsonb_agg(to_jsonb(ss) || jsonb_build_object(
      'step_type', s.step_type,
      'attempts', coalesce(tk.attempts, 0),
      'tasks', coalesce(tk.by_status, '{}'::jsonb),
      'error_type', tk.error_type,
      'error_traceback', tk.error_traceback
    ) order by ss.step_index)
    from pgflow.step_states ss
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
    ) tk on true
    where ss.run_id = r.run_id
  ), '[]'::jsonb))
  into result
  from pgflow.runs r where r.run_id = get_run_with_states.run_id;
  if result is null then
    perform pgflow._raise('PGF07', format('unknown run %s', run_id),
      'Check the run id; `pgflow runs` lists recent runs.');
  end if;
  return result;
end;
$$;
