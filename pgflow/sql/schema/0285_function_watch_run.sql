-- watch_run(listener_id, run_id, ttl_seconds): register a run listener, so that the run's
-- status changes are notified on `pgflow_run_<run_id>` (0200). Call it after LISTEN on that
-- channel and before the barrier (sync_run), then read the run.
-- * run_id: the run (it need not exist yet: register before start_flow to hear
--   run:started); NULL: every run.
-- * ttl_seconds: the registration lives that long (1 to 86400, default 60; PGF08
--   otherwise) unless renewed by calling again; remove it with unwatch.
-- * Returns true when it was already registered and live (never lapsed); false when the
--   row was created or revived: notifications may have been skipped meanwhile, so run the
--   barrier and read again.
-- Also deletes a few expired registrations (_forget_listeners). Locks: the listener's row.
create or replace function pgflow.watch_run(
  listener_id uuid, run_id uuid, ttl_seconds int default 60
)
returns boolean
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
#variable_conflict use_column
declare
  ttl_ interval := pgflow._listener_ttl(listener_id, ttl_seconds);
  watched uuid := coalesce(run_id, '00000000-0000-0000-0000-000000000000'::uuid);
  live boolean;
begin
  select exists (
    select 1 from pgflow.listeners l
    where l.listener_id = watch_run.listener_id and l.run_id = watched
      and l.expires_at > pg_catalog.now()) into live;
  insert into pgflow.listeners as l (listener_id, run_id, expires_at, ttl)
  values (watch_run.listener_id, watched, pg_catalog.now() + ttl_, ttl_)
  on conflict (listener_id, (coalesce(run_id::text, flow_slug)))
  do update set expires_at = excluded.expires_at, ttl = excluded.ttl;
  perform pgflow._forget_listeners(11);
  return live;
end;
$$;
