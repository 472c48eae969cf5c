-- Moving a run forward. Lock order inside a run, used by every function:
-- step_tasks -> step_states -> runs (the run row last), which keeps concurrent completions,
-- failures and cancellations of one run free of deadlocks.

-- _step_input(run_id, flow_slug, step_slug, run_input): what a non-map step receives:
-- the run input for a root step, else {dep_slug: output} of its completed dependencies
-- (a skipped dependency's key is absent).
create or replace function pgflow._step_input(
  run_id uuid, flow_slug text, step_slug text, run_input jsonb, deps_count int
)
returns jsonb
language plpgsql
stable
set search_path = pg_catalog, pg_temp
set enable_seqscan = off
as $$
begin
  if deps_count = 0 then
    return run_input;
  end if;
  return (
    select coalesce(jsonb_object_agg(d.dep_slug, ds.output), '{}'::jsonb)
    from pgflow.deps d
    join pgflow.step_states ds
      on ds.run_id = _step_input.run_id and ds.step_slug = d.dep_slug
    where d.flow_slug = _step_input.flow_slug and d.step_slug = _step_input.step_slug
      and ds.status = 'completed'
  );
end;
$$;
