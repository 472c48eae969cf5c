-- _unmet_condition(step, input): NULL when the step's conditions hold on its input, else
-- the reason. Patterns are JSON containment (@>) tests.
create or replace function pgflow._unmet_condition(step pgflow.steps, step_input jsonb)
returns text
language plpgsql
immutable
set search_path = pg_catalog, pg_temp
set enable_seqscan = off
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
