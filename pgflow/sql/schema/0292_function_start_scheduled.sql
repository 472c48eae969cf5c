-- start_scheduled(flow_slug, schedule_name, tick): start the run of one schedule tick, once.
-- Returns the run id, or NULL when nothing was started: the schedule is unknown or paused,
-- the tick is in the future, or it is not newer than the schedule's last tick (another
-- worker started it or a later one first).
-- * Workers compute due ticks from the cron expression and call this for each, oldest first.
--   The schedule row is locked, so any number of workers racing one tick start it once; the
--   run id is derived from (flow, schedule, tick), so even a start replayed after the row
--   changed finds the same run (start_flow is idempotent on run ids). It is UUIDv7-shaped
--   with the tick's time (_uuid7_at), so the run lands in that month's history partition.
-- * skip => true records the tick as passed without starting it (catch_up = 'none' after
--   downtime), so the next due tick is computed from there.
create or replace function pgflow.start_scheduled(
  flow_slug text, schedule_name text, tick timestamptz, skip boolean default false
)
returns uuid
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  sched pgflow.schedules;
  new_id uuid;
begin
  select * into sched from pgflow.schedules s
  where s.flow_slug = start_scheduled.flow_slug and s.name = start_scheduled.schedule_name
  for update;
  if not found or sched.paused or tick is null or tick > pgflow._now()
     or tick <= coalesce(sched.last_tick, sched.created_at) then
    return null;
  end if;
  update pgflow.schedules s set last_tick = start_scheduled.tick
  where s.flow_slug = sched.flow_slug and s.name = sched.name;
  if skip then
    return null;
  end if;
  new_id := pgflow._uuid7_at(tick, format('pgflow.schedule:%s:%s:%s', sched.flow_slug,
    sched.name, extract(epoch from tick)));
  perform pgflow.start_flow(flow_slug => sched.flow_slug, input => sched.input,
    run_id => new_id);
  return new_id;
end;
$$;
