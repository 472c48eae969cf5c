-- 0005_scale: from the released 0004 schema to the one with history partitioned by run
-- start time (and what else lands before 0005 is released). The schema files that follow this
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

-- History partitioned by run id (0048_function_partition_history.sql, called by
-- 0049_partition_history.sql): the tables runs, step_states and step_tasks are renamed to
-- <table>_default and become the default partitions of new partitioned tables of the same
-- names. A row type follows its table, so functions whose result or arguments are these row
-- types would keep the old table's: drop them here (the schema files create them again on
-- the new tables; their users' EXECUTE grants were saved above and are given back by 0990).
do $$
declare
  f record;
begin
  for f in
    select p.oid::regprocedure as signature
    from pg_catalog.pg_proc p
    where p.pronamespace = 'pgflow'::regnamespace
      and (p.prorettype in ('pgflow.runs'::regtype, 'pgflow.step_states'::regtype,
                            'pgflow.step_tasks'::regtype)
        or p.proargtypes::oid[] && array['pgflow.runs'::regtype, 'pgflow.step_states'::regtype,
                                        'pgflow.step_tasks'::regtype]::oid[])
  loop
    execute format('drop function %s', f.signature);
  end loop;
end
$$;
-- A ctid is unique only within one partition: claim_tasks' picks now carry run ids, and
-- _pick_limited returns them beside the ctids.
drop function if exists pgflow._pick_limited(text[], text[], int);

-- Chains and diamonds (issue 17): _tasks_done can leave the dependents to its caller
-- (complete_tasks starts them itself, 0250_function_complete_tasks.sql); the old signature
-- would stay beside the new one.
drop function if exists pgflow._tasks_done(uuid, text, int, jsonb, bigint);
