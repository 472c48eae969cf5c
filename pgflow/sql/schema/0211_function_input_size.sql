-- _input_size(run_id, flow_slug, step_slug): the size of the input a fan-in step's task
-- will be built from: the outputs of its completed dependencies (skipped ones are absent).
-- A fan-in's task records it when the step starts (_start_step, _start_dependents,
-- _complete_batch), so claim_tasks can fail a task whose input Postgres cannot hold instead
-- of building it. Read in a statement that starts after the one that released the step: an
-- update that waited for a transaction completing another dependency sees that row, but its
-- own snapshot (and every sub-select in it) predates that output.
create or replace function pgflow._input_size(run_id uuid, flow_slug text, step_slug text)
returns bigint
language plpgsql
stable
set search_path = pg_catalog, pg_temp
set enable_seqscan = off
as $$
begin
  return (
    select sum(coalesce(ds.output_bytes, pg_column_size(ds.output)))::bigint
    from pgflow.deps d
    join pgflow.step_states ds on ds.run_id = _input_size.run_id and ds.step_slug = d.dep_slug
    where d.flow_slug = _input_size.flow_slug and d.step_slug = _input_size.step_slug
      and ds.status = 'completed');
end;
$$;
