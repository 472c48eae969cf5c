-- 0004_flow_control: from the released 0003 schema to the one with concurrency and rate
-- limits (and what else lands before 0004 is released). The schema files that follow this
-- delta in the generated migration re-create every function, table, index and grant; this
-- part only does what `create ... if not exists` and `create or replace` cannot (new
-- columns on existing tables, dropped or re-typed functions, data fixes).

-- Grants a user gave on functions whose signature changes below would vanish with the
-- dropped function. Remember them here, by function name;
-- 0990_restore_upgrade_grants.sql gives them back on the new signature. pgflow's own roles
-- are left out: 0900_roles_and_grants.sql grants them. When several migrations run in one
-- transaction (Alembic, an install inside the caller's transaction), 0003's table is still
-- there, its grants already given back by 0003's own restore: start afresh.
drop table if exists pg_temp.pgflow_upgrade_grants;
create temp table pgflow_upgrade_grants on commit drop as
select p.proname::text as function_name, r.rolname::text as grantee
from pg_catalog.pg_proc p
cross join lateral pg_catalog.aclexplode(p.proacl) a
join pg_catalog.pg_roles r on r.oid = a.grantee
where p.pronamespace = 'pgflow'::regnamespace and a.privilege_type = 'EXECUTE'
  and a.grantee <> p.proowner and r.rolname not in ('pgflow_worker', 'pgflow_reader');

-- Large values by reference (docs/large-values.md): the setting inline_limit_bytes joins
-- the names pgflow.settings accepts (0030 inserts its default row). The blob tables and
-- functions are new and come with the schema files.
alter table pgflow.settings drop constraint if exists settings_name_check;
-- Keyed limits of runs whose input is stored by reference read the kept fields (0040).
alter table pgflow.runs add column if not exists limit_keys jsonb;
alter table pgflow.settings add constraint settings_name_check
  check (name in ('max_payload_bytes', 'read_budget_bytes', 'inline_limit_bytes'));

-- Notifications only for listeners (0046_table_listeners.sql, 0200_function_events.sql):
-- the table pgflow.listeners and its functions are new and come with the schema files;
-- heartbeat and worker_stopped keep their signatures. 0046 also keeps every notification
-- for an hour when live workers of the earlier version are found (see its comment).
