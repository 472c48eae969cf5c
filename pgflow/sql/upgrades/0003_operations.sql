-- 0003_operations: from the released 0002 schema to the one with run operations (retry,
-- retention, stored input schemas), flow listing and inspection. The schema files that
-- follow this delta in the generated migration re-create every function, table, index and
-- grant; this part only does what `create ... if not exists` and `create or replace`
-- cannot (new columns on existing tables, dropped or re-typed functions, data fixes).

-- Grants a user gave on functions whose signature changes below (e.g. EXECUTE on
-- start_flow to an application role) would vanish with the dropped function. Remember them
-- here, by function name; 0990_restore_upgrade_grants.sql gives them back on the new
-- signature. pgflow's own roles are left out: 0900_roles_and_grants.sql grants them.
create temp table pgflow_upgrade_grants on commit drop as
select p.proname::text as function_name, r.rolname::text as grantee
from pg_catalog.pg_proc p
cross join lateral pg_catalog.aclexplode(p.proacl) a
join pg_catalog.pg_roles r on r.oid = a.grantee
where p.pronamespace = 'pgflow'::regnamespace and a.privilege_type = 'EXECUTE'
  and a.grantee <> p.proowner and r.rolname not in ('pgflow_worker', 'pgflow_reader');

-- Retry, validated starts and retention (retry_run, flows.input_schema, flows.retention,
-- prune's filters, apply_retention).
-- New columns (appended, as the schema files list them last).
alter table pgflow.flows
  add column if not exists input_schema jsonb check (
    input_schema is null or jsonb_typeof(input_schema) in ('object', 'boolean')
  ),
  add column if not exists retention interval check (
    retention is null or retention > interval '0'
  );
alter table pgflow.step_tasks
  add column if not exists forgiven_attempts int not null default 0
    check (forgiven_attempts >= 0);
-- Functions whose signature changed (new optional parameters): the old ones must not linger
-- beside the new ones, or a call naming only the old parameters would be ambiguous.
drop function if exists pgflow.create_flow(text, int, int, int, jsonb, text);
drop function if exists pgflow._update_flow_options(pgflow.flows, int, int, int);
drop function if exists pgflow.prune(interval);

-- Telemetry (trace context stored with a run, claim lag; the finished-task index is created
-- by the schema files).
alter table pgflow.runs add column if not exists trace_context jsonb;
do $$
begin
  if not exists (
    select 1 from pg_catalog.pg_attribute a
    where a.attrelid = 'pgflow.claimed_task'::regclass and a.attname = 'trace_context'
      and not a.attisdropped
  ) then
    alter type pgflow.claimed_task
      add attribute trace_context jsonb,
      add attribute claim_lag double precision;
  end if;
end
$$;
-- start_flow gained the optional trace_context parameter.
drop function if exists pgflow.start_flow(text, jsonb, uuid);

-- The test clock hook (pgflow._now(), docs/testing.md): every function and column default
-- reads the time through pgflow._now(), which pgflow.testing replaces in test databases.
-- Defaults of the tables 0001/0002 created switch to it here; the function must exist
-- first (0025_function_now.sql re-creates it identically later in this migration).
create or replace function pgflow._now()
returns timestamptz
language sql
stable
parallel safe
as $$
  select pg_catalog.now()
$$;
alter table pgflow.flows alter column created_at set default pgflow._now();
alter table pgflow.steps alter column created_at set default pgflow._now();
alter table pgflow.deps alter column created_at set default pgflow._now();
alter table pgflow.settings alter column updated_at set default pgflow._now();
alter table pgflow.runs alter column started_at set default pgflow._now();
alter table pgflow.step_states alter column created_at set default pgflow._now();
alter table pgflow.step_tasks
  alter column queued_at set default pgflow._now(),
  alter column available_at set default pgflow._now(),
  alter column priority_at set default pgflow._now();
alter table pgflow.workers
  alter column started_at set default pgflow._now(),
  alter column last_heartbeat_at set default pgflow._now();

-- Worker pools per step (claim_tasks gained the optional step_slugs parameter; the
-- step_tasks_ready_by_step index is created by the schema files).
drop function if exists pgflow.claim_tasks(text[], uuid, int);

-- Priorities (flows.priority, runs.priority; _queue_head and _start_step gained a priority
-- parameter).
alter table pgflow.flows
  add column if not exists priority int not null default 0
    check (priority between -100 and 100);
alter table pgflow.runs
  add column if not exists priority int not null default 0
    check (priority between -100 and 100);
drop function if exists pgflow._queue_head(text);
drop function if exists pgflow._start_step(uuid, pgflow.steps, jsonb);
drop function if exists pgflow.start_flow(text, jsonb, uuid, jsonb);
drop function if exists pgflow.create_flow(text, int, int, int, jsonb, text, jsonb, interval);
drop function if exists pgflow._update_flow_options(
  pgflow.flows, int, int, int, jsonb, interval);
