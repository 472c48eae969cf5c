-- start_flow(flow_slug, input, run_id): start a run and return its row.
-- * Unknown slug: PGF02. A flow whose compiled SQL stopped midway ('defining'): PGF06.
-- * A caller-supplied run_id that already exists returns that run unchanged (idempotent
--   start); if it belongs to another flow: PGF08.
-- * Root steps start at once (or after their start_delay); a root map over a non-array
--   input fails the run with TYPE_VIOLATION, which the returned row shows.
-- * Takes the flow's lock in shared mode: starts run side by side, but never while
--   `deploy --dev` (delete_flow_and_data, exclusive) recreates the flow, so a run belongs
--   wholly to the shape it started with and is deleted with it.
-- * Records the flow's checksum and the input's size with the run.
-- * An input larger than the inline_limit_bytes setting is stored by reference
--   (_store_value; docs/large-values.md); an input that is a reference ({"$pgflow_ref": ...},
--   made by seal_blob for this run id before this call, as pgflow's clients do) must name a
--   stored value of this run (PGF08 otherwise: the key is reserved), whose size counts
--   against max_payload_bytes.
-- * trace_context (optional, NULL by default): the W3C trace context of the caller's span,
--   {"traceparent": ..., "tracestate": ...}, stored with the run so that task spans on any
--   host continue the caller's trace (docs/telemetry.md). An idempotent start keeps the
--   existing run's.
-- * priority (optional): -100..100, higher first (see _queue_head); NULL takes the flow's
--   (flows.priority, 0 unless deployed with one). Out of range: PGF08. An idempotent start
--   keeps the existing run's.
create or replace function pgflow.start_flow(
  flow_slug text, input jsonb, run_id uuid default null, trace_context jsonb default null,
  priority int default null
)
returns pgflow.runs
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
-- every statement inside is an index lookup: a generic plan is right and saves re-planning
set plan_cache_mode = force_generic_plan
-- key look-ups stay index probes even on a partition whose statistics say it is empty
-- (ANALYZE after a prune emptied it): a cached plan would otherwise scan it on every call
set enable_seqscan = off
as $$
declare
  flow_status text;
  flow_checksum text;
  flow_priority int;
  result pgflow.runs;
  new_id uuid := coalesce(start_flow.run_id, pgflow._uuid7());
  input_size bigint := pg_column_size(start_flow.input)::bigint;
  max_bytes bigint := pgflow._max_payload_bytes();
  stored_input jsonb := start_flow.input;
  problem text;
  whole jsonb;
  limit_keys jsonb;
begin
  perform pg_advisory_xact_lock_shared(hashtext('pgflow.flow:' || start_flow.flow_slug));
  select f.status, f.checksum, f.priority into flow_status, flow_checksum, flow_priority
  from pgflow.flows f where f.flow_slug = start_flow.flow_slug;
  if not found then
    perform pgflow._raise('PGF02', format('unknown flow %L', start_flow.flow_slug),
      'Deploy it first: `pgflow deploy FLOWS` (or apply its compiled SQL); '
      || '`pgflow flows` lists what is deployed.');
  elsif flow_status = 'defining' then
    perform pgflow._raise('PGF06', format(
      'flow %L is only partly defined (%s of %s steps)', start_flow.flow_slug,
      (select count(*) from pgflow.steps s where s.flow_slug = start_flow.flow_slug),
      (select jsonb_array_length(f.declared_shape -> 'steps') from pgflow.flows f
       where f.flow_slug = start_flow.flow_slug)),
      'Its compiled SQL stopped midway; apply it again to finish the definition.');
  end if;
  if input_size > max_bytes then
    perform pgflow._raise('PGF08', format(
      'flow %L: run input is %s bytes, over the limit of %s bytes', start_flow.flow_slug,
      input_size, max_bytes),
      'Store large data elsewhere (a table, object storage) and pass a reference; or have '
      || 'the database owner raise the limit: select pgflow.set_setting(''max_payload_bytes'', N).');
  end if;
  if input is null then
    perform pgflow._raise('PGF08', format('flow %L: run input must not be NULL',
      start_flow.flow_slug), 'Pass a JSON value, e.g. ''{}''::jsonb.');
  end if;
  if jsonb_typeof(stored_input) = 'object' and stored_input ? '$pgflow_ref' then
    problem := pgflow._check_ref(new_id, stored_input);
    if problem is not null then
      perform pgflow._raise('PGF08', format('flow %L: the run input looks like a reference to a '
        || 'stored value but is not one: %s', start_flow.flow_slug, problem),
        'The key "$pgflow_ref" is reserved for pgflow''s references: wrap such a value in '
        || 'another object, e.g. {"value": ...}.');
    elsif (stored_input ->> 'size')::bigint > max_bytes then
      perform pgflow._raise('PGF08', format('flow %L: run input is %s bytes, over the limit of '
        || '%s bytes', start_flow.flow_slug, stored_input ->> 'size', max_bytes),
        'Have the database owner raise the limit: '
        || 'select pgflow.set_setting(''max_payload_bytes'', N).');
    end if;
  elsif input_size > 1024 and input_size > pgflow._inline_limit_bytes()
     and not exists (select 1 from pgflow.runs r where r.run_id = new_id) then
    stored_input := pgflow._store_value(new_id, stored_input);
    input_size := pg_column_size(stored_input)::bigint;
  end if;
  -- An input stored by reference: the fields the flow's keyed limits group runs by are kept
  -- inline (runs.limit_keys), so claims need not fetch the value. A value in an external
  -- store cannot be read here: its run is in the group of null.
  if pgflow._is_ref(stored_input) and exists (select 1 from pgflow.limits l
      where l.flow_slug = start_flow.flow_slug and l.key is not null) then
    whole := pgflow._unref(new_id, start_flow.input);
    select coalesce(jsonb_object_agg(l.key, whole -> l.key), '{}'::jsonb) into limit_keys
    from pgflow.limits l
    where l.flow_slug = start_flow.flow_slug and l.key is not null
      and jsonb_typeof(whole) = 'object';
  end if;
  if start_flow.priority not between -100 and 100 then
    perform pgflow._raise('PGF08', format('flow %L: priority %s is out of range',
      start_flow.flow_slug, start_flow.priority),
      'Pass a priority from -100 to 100 (higher first), or NULL for the flow''s.');
  end if;

  insert into pgflow.runs as r (run_id, flow_slug, input, remaining_steps, flow_checksum,
    input_bytes, trace_context, priority, limit_keys)
  values (new_id, start_flow.flow_slug, stored_input,
    (select count(*) from pgflow.steps s where s.flow_slug = start_flow.flow_slug),
    flow_checksum, input_size, start_flow.trace_context,
    coalesce(start_flow.priority, flow_priority, 0), limit_keys)
  on conflict do nothing
  returning * into result;
  if not found then
    select * into result from pgflow.runs r where r.run_id = new_id;
    if result.flow_slug <> start_flow.flow_slug then
      perform pgflow._raise('PGF08', format('run %s already exists for flow %L, not %L',
        new_id, result.flow_slug, start_flow.flow_slug),
        'Use a new run_id, or omit it to let pgflow generate one.');
    end if;
    return result;
  end if;

  insert into pgflow.step_states (run_id, step_slug, flow_slug, step_index, step_type,
    remaining_deps)
  select new_id, s.step_slug, s.flow_slug, s.step_index, s.step_type, s.deps_count
  from pgflow.steps s where s.flow_slug = start_flow.flow_slug;
  perform pgflow._emit(new_id, start_flow.flow_slug, 'run:started', 'started');
  perform pgflow._advance_run(new_id, 0, true);
  select * into result from pgflow.runs r where r.run_id = new_id;
  return result;
end;
$$;
