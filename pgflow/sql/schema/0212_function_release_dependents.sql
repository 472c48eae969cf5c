-- _release_dependents(...): one dependency of each direct dependent is resolved. Returns
-- how many dependents have no unresolved dependency left (ready to start).
create or replace function pgflow._release_dependents(run_id uuid, flow_slug text, step_slug text)
returns int
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
set enable_seqscan = off
as $$
declare
  ready int;
begin
  with released as (
    update pgflow.step_states ss
    set remaining_deps = ss.remaining_deps - 1
    from pgflow.deps d
    where d.flow_slug = _release_dependents.flow_slug
      and d.dep_slug = _release_dependents.step_slug
      and ss.run_id = _release_dependents.run_id and ss.step_slug = d.step_slug
      and ss.status = 'created'
    returning ss.remaining_deps
  )
  select (count(*) filter (where r.remaining_deps = 0))::int into ready from released r;
  return ready;
end;
$$;
