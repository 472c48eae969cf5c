-- Roles and privileges.
--
-- Every public function is SECURITY DEFINER with a fixed search_path, so callers need no
-- table privileges at all. Nothing is executable by PUBLIC.
-- * pgflow_worker: EXECUTE on the worker functions only (claim, report, release, heartbeat,
--   cancelled_attempts, apply_retention, create_history_partitions, storing and reading
--   values by reference) and on
--   flow_input_schema.
--   It cannot read or write the tables directly and cannot start flows unless granted
--   (GRANT EXECUTE ON FUNCTION pgflow.start_flow(text, jsonb, uuid, jsonb, int)
--   TO pgflow_worker).
-- * pgflow_reader: SELECT on the tables and EXECUTE on the inspection functions.
-- * Both: EXECUTE on the listener functions (listen_tasks, watch_run, unwatch, sync_tasks,
--   sync_run): whoever LISTENs registers, or is not notified (0200).
-- Roles are created when the installing role may create roles; otherwise the statements a
-- DBA must run are raised as NOTICEs (the installer prints them).
revoke all on all functions in schema pgflow from public;
revoke all on schema pgflow from public;

do $$
declare
  can_create boolean;
  stmt text;
  role_name text;
begin
  select r.rolcreaterole or r.rolsuper into can_create
  from pg_catalog.pg_roles r where r.rolname = current_user;
  foreach role_name in array array['pgflow_worker', 'pgflow_reader'] loop
    if not exists (select 1 from pg_catalog.pg_roles r where r.rolname = role_name) then
      stmt := format('create role %I nologin', role_name);
      if can_create then
        execute stmt;
      else
        raise notice 'pgflow: ask a DBA to run: %;', stmt;
      end if;
    end if;
  end loop;

  foreach stmt in array array[
    'grant usage on schema pgflow to pgflow_worker, pgflow_reader',
    'grant execute on function pgflow.claim_tasks(text[], uuid, int, text[]), '
      || 'pgflow.complete_task(uuid, text, int, jsonb, int), '
      || 'pgflow.complete_tasks(uuid[], text[], int[], jsonb[], int[]), '
      || 'pgflow.fail_task(uuid, text, int, text, int, text, text), '
      || 'pgflow.fail_tasks(uuid[], text[], int[], text[], int[], text[], text[]), '
      || 'pgflow.release_tasks(uuid), pgflow.register_worker(uuid, text[], text, int), '
      || 'pgflow.heartbeat(uuid), pgflow.worker_stopped(uuid), '
      || 'pgflow.cancelled_attempts(uuid[], text[], int[], int[]), '
      || 'pgflow.apply_retention(int), pgflow.create_history_partitions(int), '
      || 'pgflow.active_schedules(text[]), pgflow.start_scheduled(text, text, timestamptz, boolean), '
      -- values stored by reference (docs/large-values.md): store, read, delete external ones
      || 'pgflow.value_limits(), pgflow.put_blob_chunk(uuid, uuid, int, bytea), '
      || 'pgflow.seal_blob(uuid, uuid, bigint, text, text), pgflow.read_blob(uuid, uuid, int, int), '
      || 'pgflow.task_flow_input(uuid, text, int, int), pgflow.blob_tombstones(text, int), '
      || 'pgflow.forget_blob_tombstones(text, uuid[], uuid[]) '
      || 'to pgflow_worker',
    -- what Client.start(slug) validates against, for any role that may start runs
    'grant execute on function pgflow.flow_input_schema(text) to pgflow_worker, pgflow_reader',
    -- notifications are sent only to registered listeners (0046, 0200): workers and
    -- readers (clients waiting for runs, the run viewer) register and run the barrier
    'grant execute on function pgflow.listen_tasks(uuid, text[], int), '
      || 'pgflow.watch_run(uuid, uuid, int), pgflow.unwatch(uuid, uuid), '
      || 'pgflow.sync_tasks(text[]), pgflow.sync_run(uuid) to pgflow_worker, pgflow_reader',
    'grant select on all tables in schema pgflow to pgflow_reader',
    'grant execute on function pgflow.get_run_with_states(uuid), '
      || 'pgflow.get_flow_shape(text), pgflow.flow_checksum(text), '
      || 'pgflow.is_valid_slug(text), pgflow.shape_checksum(jsonb), '
      || 'pgflow.value_limits(), pgflow.read_blob(uuid, uuid, int, int), '
      || 'pgflow.history_partitions() to pgflow_reader'
  ] loop
    if exists (select 1 from pg_catalog.pg_roles r where r.rolname = 'pgflow_worker')
       and exists (select 1 from pg_catalog.pg_roles r where r.rolname = 'pgflow_reader') then
      execute stmt;
    else
      raise notice 'pgflow: ask a DBA to run: %;', stmt;
    end if;
  end loop;
end
$$;

-- Functions added by later migrations must not become executable by PUBLIC either.
alter default privileges in schema pgflow revoke execute on functions from public;
