-- task_flow_input(run_id, step_slug, task_index, attempt): the run input of a task, for the
-- worker running it. claim_tasks does not send it with map tasks (a map of a million
-- elements would carry it a million times); a handler that asks for it gets it from here.
-- Served only to the attempt that holds the task's lease (status 'started', attempts_count
-- = attempt); otherwise PGF15, as the task was cancelled, taken over or finished meanwhile.
create or replace function pgflow.task_flow_input(
  run_id uuid, step_slug text, task_index int, attempt int
)
returns jsonb
language plpgsql
stable
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  result jsonb;
begin
  select r.input into result
  from pgflow.step_tasks t
  join pgflow.runs r on r.run_id = t.run_id
  where t.run_id = task_flow_input.run_id and t.step_slug = task_flow_input.step_slug
    and t.task_index = task_flow_input.task_index and t.status = 'started'
    and t.attempts_count = task_flow_input.attempt;
  if not found then
    perform pgflow._raise('PGF15', format('task %s of step %L of run %s is not leased to '
      || 'attempt %s: its run input is served to the attempt running it only', task_index,
      step_slug, run_id, attempt),
      'The task was cancelled, taken over or finished meanwhile; nothing to do.');
  end if;
  return result;
end;
$$;
