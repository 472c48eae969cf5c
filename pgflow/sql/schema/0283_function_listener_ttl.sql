-- _listener_ttl(listener_id, ttl_seconds): the checked arguments shared by listen_tasks and
-- watch_run: a non-NULL listener id and a lifetime of 1 to 86400 seconds (PGF08
-- otherwise), returned as an interval. The bound keeps the rows a caller can keep alive
-- proportional to how often it registers.
create or replace function pgflow._listener_ttl(listener_id uuid, ttl_seconds int)
returns interval
language plpgsql
immutable
set search_path = pg_catalog, pg_temp
as $$
begin
  if listener_id is null then
    -- not a constant message: the planner would fold the call and raise at plan time
    perform pgflow._raise('PGF08', format('a listener needs a listener_id, got %s',
      coalesce(listener_id::text, 'NULL')),
      'Pass a UUID that names this listener (a worker passes its worker_id).');
  end if;
  if ttl_seconds is null or ttl_seconds not between 1 and 86400 then
    perform pgflow._raise('PGF08', format('a listener''s ttl_seconds must be 1 to 86400, got %s',
      coalesce(ttl_seconds::text, 'NULL')), 'Pass e.g. 60, and register again before it ends.');
  end if;
  return make_interval(secs => ttl_seconds);
end;
$$;
