-- unwatch(listener_id, run_id): remove registrations of a listener (watch_run,
-- listen_tasks): with run_id, only its registration for that run; with NULL, all of them.
-- Returns how many rows were removed (0 for an unknown listener or a NULL listener_id).
create or replace function pgflow.unwatch(listener_id uuid, run_id uuid default null)
returns int
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  n int;
begin
  delete from pgflow.listeners l
  where l.listener_id = unwatch.listener_id
    and (unwatch.run_id is null or l.run_id = unwatch.run_id);
  get diagnostics n = row_count;
  return n;
end;
$$;
