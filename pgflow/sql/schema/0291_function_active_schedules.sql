-- active_schedules(flow_slugs): the unpaused schedules of these flows, for a worker to compute
-- their due ticks: cron, time zone, catch-up policy, the tick after which ticks are due
-- (`since`: the last tick, else when the schedule was created) and the database's `now`.
-- Reads only what workers need (no inputs), so the worker role needs no table privileges.
create or replace function pgflow.active_schedules(flow_slugs text[])
returns table (
  flow_slug text, name text, cron text, timezone text, catch_up text,
  since timestamptz, db_now timestamptz
)
language sql
stable
security definer
set search_path = pg_catalog, pg_temp
as $$
  select s.flow_slug, s.name, s.cron, s.timezone, s.catch_up,
         coalesce(s.last_tick, s.created_at), pgflow._now()
  from pgflow.schedules s
  where s.flow_slug = any(active_schedules.flow_slugs) and not s.paused
  order by s.flow_slug, s.name;
$$;
