-- _event(run_id, flow_slug, event, status, step_slug): the payload of a run event on
-- channel pgflow_run_<run_id> (0200_function_events.sql): {"event", "run_id", "flow_slug",
-- "step_slug", "status"}. step_slug is NULL for run events.
create or replace function pgflow._event(
  run_id uuid, flow_slug text, event text, status text, step_slug text default null
)
returns jsonb
language plpgsql  -- not SQL: called once per event, and a plpgsql call costs less
immutable
set search_path = pg_catalog, pg_temp
as $$
begin
  return jsonb_build_object('event', event, 'run_id', run_id, 'flow_slug', flow_slug,
    'step_slug', step_slug, 'status', status);
end;
$$;

-- _emit_events(events): notify run events (_event payloads), in their order, on channel
-- pgflow_run_<run_id> of each, skipping those nobody can hear: the protocol of
-- 0200_function_events.sql. The shared lock of each run's bucket is tried first (in
-- expressions, not statements), then one statement looks at the listeners of every event's
-- run: an event is skipped only when that look finds nobody watching its run (or every
-- run). The events of a bucket whose try-lock fails, and every event of a transaction that
-- is not READ COMMITTED, are notified without looking. _emit is one event;
-- _complete_batch gathers a batch's events and emits them here once. NULL or empty: nothing
-- to do.
create or replace function pgflow._emit_events(events jsonb[])
returns void
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
-- index probes only: a generic plan is right, and re-planning would cost every batch
set plan_cache_mode = force_generic_plan
as $$
declare
  tried int[] := '{}'::int[];  -- buckets whose try-lock was taken or tried
  missed int[] := '{}'::int[];  -- buckets notified without looking
  bucket int;
  v jsonb;
  e record;
begin
  if coalesce(cardinality(events), 0) = 0 then
    return;
  end if;
  if current_setting('transaction_isolation') <> 'read committed' then
    missed := array[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15];
  else
    foreach v in array events loop
      bucket := hashtext(v ->> 'run_id') & 15;
      if not bucket = any(tried) then
        tried := tried || bucket;
        if not pg_try_advisory_xact_lock_shared(1885824626, bucket) then
          missed := missed || bucket;
        end if;
      end if;
    end loop;
  end if;
  for e in
    select v.payload, (v.payload ->> 'run_id')::uuid as run_id
    from unnest(events) with ordinality as v(payload, n)
    where (hashtext(v.payload ->> 'run_id') & 15) = any(missed)
      or exists (select 1 from pgflow.listeners l
                 where l.run_id = any(array[(v.payload ->> 'run_id')::uuid,
                                            '00000000-0000-0000-0000-000000000000'::uuid])
                   and l.expires_at > pg_catalog.now())
    order by v.n
  loop
    perform pg_notify('pgflow_run_' || e.run_id::text, e.payload::text);
  end loop;
end;
$$;
