-- 0008_completion: from the released 0007 schema to the next one (what else lands before
-- 0008 is released). The schema files that follow this
-- delta in the generated migration re-create every function, table, index and grant; this
-- part only does what `create ... if not exists` and `create or replace` cannot (new
-- columns on existing tables, dropped or re-typed functions, data fixes).

-- Grants a user gave on functions whose signature changes below would vanish with the
-- dropped function. Remember them here, by function name;
-- 0990_restore_upgrade_grants.sql gives them back on the new signature. pgflow's own roles
-- are left out: 0900_roles_and_grants.sql grants them. When several migrations run in one
-- transaction (Alembic, an install inside the caller's transaction), an earlier migration's
-- table is still there, its grants already given back by its own restore: start afresh.
drop table if exists pg_temp.pgflow_upgrade_grants;
create temp table pgflow_upgrade_grants on commit drop as
select p.proname::text as function_name, r.rolname::text as grantee
from pg_catalog.pg_proc p
cross join lateral pg_catalog.aclexplode(p.proacl) a
join pg_catalog.pg_roles r on r.oid = a.grantee
where p.pronamespace = 'pgflow'::regnamespace and a.privilege_type = 'EXECUTE'
  and a.grantee <> p.proowner and r.rolname not in ('pgflow_worker', 'pgflow_reader');

-- A batch of small outputs is completed by _complete_batch in set-based statements, so the
-- one-by-one path no longer gathers events or carries a queue head between calls:
-- _start_dependents, _tasks_done and _advance_run emit their own events again, and lose
-- the parameters (head, emit, release) and OUT columns (started, leaf) that served it.
drop function if exists pgflow._start_dependents(uuid, text, text, timestamptz, boolean);
drop function if exists pgflow._tasks_done(uuid, text, int, jsonb, bigint, boolean);
drop function if exists pgflow._advance_run(uuid, int, boolean, boolean);

-- A completed run's output is read by _run_outputs, for a whole batch of runs at once.
drop function if exists pgflow._run_output(uuid);
