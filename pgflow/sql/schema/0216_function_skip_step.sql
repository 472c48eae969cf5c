-- _skip_step(run_id, step_slug, reason, cascade): skip a step (cancelling any tasks it
-- still has) and, with cascade, every descendant; without cascade its dependents run
-- without its key. Returns the number of steps skipped.
create or replace function pgflow._skip_step(
  run_id uuid, step_slug text, reason text, cascade boolean
)
returns int
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
set enable_seqscan = off
as $$
declare
  flow text;
  skipped record;
  n int := 0;
begin
  select ss.flow_slug into flow from pgflow.step_states ss
  where ss.run_id = _skip_step.run_id and ss.step_slug = _skip_step.step_slug;
  perform pgflow._cancel_live_tasks(run_id, step_slug);
  for skipped in
    with recursive downstream(step_slug, reason) as (
      select _skip_step.step_slug, _skip_step.reason
      union
      select d.step_slug, format('ancestor %L was skipped', _skip_step.step_slug)
      from downstream ds join pgflow.deps d
        on d.flow_slug = flow and d.dep_slug = ds.step_slug
      where cascade
    )
    update pgflow.step_states ss
    set status = 'skipped', skip_reason = ds.reason, skipped_at = pgflow._now()
    from (select distinct on (x.step_slug) x.step_slug, x.reason from downstream x
          order by x.step_slug, x.step_slug = _skip_step.step_slug desc) ds
    where ss.run_id = _skip_step.run_id and ss.step_slug = ds.step_slug
      and ss.status in ('created', 'started')
    returning ss.step_slug
  loop
    n := n + 1;
    perform pgflow._emit(run_id, flow, 'step:' || skipped.step_slug || ':skipped', 'skipped',
      skipped.step_slug);
  end loop;
  if not cascade then
    perform pgflow._release_dependents(run_id, flow, step_slug);
  end if;
  return n;
end;
$$;
