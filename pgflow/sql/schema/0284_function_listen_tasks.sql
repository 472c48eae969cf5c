-- listen_tasks(listener_id, flow_slugs, ttl_seconds): register a task listener, so that
-- transactions making tasks of these flows claimable notify `pgflow_tasks` (0200). Call it
-- after `LISTEN pgflow_tasks` and before the barrier (sync_tasks), then claim again.
-- * listener_id: a worker passes its worker_id, so claim_tasks keeps its rows' `waiting`
--   current (false while its claims come back full: it claims again when it has room and
--   needs no notification then). Any other id (a viewer) stays waiting.
-- * flow_slugs: the flows to hear about; NULL: every flow. The listener's rows for other
--   flows are removed. At most 1000 slugs; each a valid slug (PGF01).
-- * ttl_seconds: the registration lives that long (1 to 86400, default 60; PGF08
--   otherwise) unless renewed: by calling again, or by heartbeat for a worker.
-- * Returns true when each of these flows was already registered and live (the
--   registration never lapsed); false when a row was created or revived: notifications may
--   have been skipped meanwhile, so run the barrier and read again.
-- Rows already registered keep their `waiting`; new ones start waiting. Also deletes a few
-- expired registrations (_forget_listeners). Locks: the listener's own rows.
create or replace function pgflow.listen_tasks(
  listener_id uuid, flow_slugs text[], ttl_seconds int default 60
)
returns boolean
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
#variable_conflict use_column
declare
  wanted text[];
  ttl_ interval;
  live int;
  bad text;
begin
  ttl_ := pgflow._listener_ttl(listener_id, ttl_seconds);
  if flow_slugs is null then
    wanted := array['*'];
  elsif cardinality(flow_slugs) not between 1 and 1000 then
    perform pgflow._raise('PGF08', format('listen_tasks: flow_slugs holds %s slugs',
      cardinality(flow_slugs)), 'Pass 1 to 1000 flow slugs, or NULL for every flow.');
  else
    select s into bad from unnest(flow_slugs) as s where not pgflow.is_valid_slug(s) limit 1;
    if found then
      perform pgflow._raise('PGF01', format('listen_tasks: invalid flow slug %L', bad),
        'Pass the slugs of the flows to hear about, or NULL for every flow.');
    end if;
    wanted := array(select distinct s from unnest(flow_slugs) as s);
  end if;
  delete from pgflow.listeners l
  where l.listener_id = listen_tasks.listener_id and l.flow_slug is not null
    and l.flow_slug <> all(wanted);
  select count(*)::int into live from pgflow.listeners l
  where l.listener_id = listen_tasks.listener_id and l.flow_slug = any(wanted)
    and l.expires_at > pg_catalog.now();
  insert into pgflow.listeners as l (listener_id, flow_slug, expires_at, ttl)
  select listen_tasks.listener_id, w, pg_catalog.now() + ttl_, ttl_ from unnest(wanted) as w
  on conflict (listener_id, (coalesce(run_id::text, flow_slug)))
  do update set expires_at = excluded.expires_at, ttl = excluded.ttl;
  perform pgflow._forget_listeners(cardinality(wanted) + 10);
  return live = cardinality(wanted);
end;
$$;
