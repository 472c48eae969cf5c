-- sync_run(run_id): the barrier of a run listener (see 0200_function_events.sql): returns
-- once every transaction that may have changed the run without seeing the listener's
-- registration has ended, so a read made after it (get_run_with_states) sees their
-- changes. Call it after watch_run, then read the run.
-- * run_id: as given to watch_run; NULL: every run.
-- * Returns false when a transaction kept the key for 2 s (see _listener_barrier): do not
--   rely on notifications for its changes, read again later.
-- Holds no lock when it returns; needs no table access.
create or replace function pgflow.sync_run(run_id uuid)
returns boolean
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
begin
  return pgflow._listener_barrier(1885824626, case
    when run_id is null then array(select generate_series(0, 15))
    else array[hashtext(run_id::text) & 15] end);
end;
$$;
