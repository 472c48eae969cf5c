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

-- _emit_events(events): what _emit does for each event (an _event payload), in their
-- order, with one statement for the locks and one for the look however many events there
-- are: complete_tasks gathers a batch's events and emits them here once, instead of one
-- _emit per event. The protocol is _emit's (0200_function_events.sql): the shared lock of
-- each run's bucket is taken first, and an event is skipped only when a look made after it,
-- in a later statement, finds nobody watching its run (or every run). The events of a
-- bucket whose try-lock fails, and every event of a transaction that is not READ
-- COMMITTED, are notified without looking. NULL or empty: nothing to do.
create or replace function pgflow._emit_events(events jsonb[])
returns void
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
-- index probes only: a generic plan is right, and re-planning would cost every batch
set plan_cache_mode = force_generic_plan
as $$
declare
  missed int[] := '{}'::int[];  -- buckets notified without looking
  bucket int;
  e record;
begin
  if current_setting('transaction_isolation') <> 'read committed' then
    missed := array(select generate_series(0, 15));
  else
    for bucket in
      select distinct hashtext(v ->> 'run_id') & 15 from unnest(events) as v order by 1
    loop
      if not pg_try_advisory_xact_lock_shared(1885824626, bucket) then
        missed := missed || bucket;
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
