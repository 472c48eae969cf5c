-- _forget_listeners(max_rows): delete up to max_rows listener registrations that expired
-- (the oldest first), skipping rows another transaction holds. Called by every
-- registration and by heartbeat, so expired rows never pile up: each registration deletes
-- more than it adds. Returns how many were deleted.
create or replace function pgflow._forget_listeners(max_rows int)
returns int
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
as $$
declare
  n int;
begin
  delete from pgflow.listeners l where l.ctid = any(array(
    select x.ctid from pgflow.listeners x
    where x.expires_at <= pg_catalog.now()
    order by x.expires_at
    limit greatest(max_rows, 0)
    for update skip locked));
  get diagnostics n = row_count;
  return n;
end;
$$;
