-- sync_tasks(flow_slugs): the barrier of a task listener (see 0200_function_events.sql):
-- returns once every transaction that may have made tasks of these flows claimable
-- without seeing the listener's registration has ended, so a claim_tasks made after it
-- finds their tasks. Call it after listen_tasks (or after a short claim that set `waiting`
-- again), then claim once more before waiting for a notification.
-- * flow_slugs: as given to listen_tasks; NULL: every flow.
-- * Returns false when a transaction kept a key for 2 s (see _listener_barrier): do not
--   rely on notifications for its work, claim again later (poll).
-- Holds no lock when it returns; needs no table access.
create or replace function pgflow.sync_tasks(flow_slugs text[])
returns boolean
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
begin
  return pgflow._listener_barrier(1885824628, case
    when flow_slugs is null then array(select generate_series(0, 15))
    else array(select distinct hashtext(s) & 15 from unnest(flow_slugs) as s
               where s is not null) end);
end;
$$;
