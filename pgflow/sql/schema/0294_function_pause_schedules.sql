-- pause_schedules(flow_slug, paused, schedule_name): pause (paused = true) or resume the
-- flow's schedules (or only the named one); returns how many changed state.
-- * A paused schedule starts nothing. Resuming does not start the ticks missed meanwhile:
--   the last tick moves to now, and ticks after it are due as usual.
-- * Unknown flow or schedule: PGF02. Owner only.
create or replace function pgflow.pause_schedules(
  flow_slug text, paused boolean default true, schedule_name text default null
)
returns int
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  changed int;
begin
  if not exists (
    select 1 from pgflow.schedules s
    where s.flow_slug = pause_schedules.flow_slug
      and (pause_schedules.schedule_name is null or s.name = pause_schedules.schedule_name)
  ) then
    perform pgflow._raise('PGF02',
      format('flow %L has no schedule%s', pause_schedules.flow_slug,
        coalesce(format(' named %L', pause_schedules.schedule_name), '')),
      '`pgflow schedules list` shows the deployed schedules.');
  end if;
  update pgflow.schedules s
  set paused = pause_schedules.paused, updated_at = pgflow._now(),
      last_tick = case when pause_schedules.paused then s.last_tick
                       else greatest(s.last_tick, pgflow._now()) end
  where s.flow_slug = pause_schedules.flow_slug
    and (pause_schedules.schedule_name is null or s.name = pause_schedules.schedule_name)
    and s.paused is distinct from pause_schedules.paused;
  get diagnostics changed = row_count;
  return changed;
end;
$$;
