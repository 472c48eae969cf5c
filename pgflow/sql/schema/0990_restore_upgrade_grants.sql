-- During an upgrade only: give back the EXECUTE grants users had on functions whose
-- signature the upgrade changed (recorded by the upgrade delta in pg_temp before it dropped
-- them), on every function of the same name now. A fresh install has nothing to restore.
do $$
declare
  saved record;
  fn regprocedure;
begin
  if pg_catalog.to_regclass('pg_temp.pgflow_upgrade_grants') is null then
    return;
  end if;
  for saved in execute 'select distinct function_name, grantee from pg_temp.pgflow_upgrade_grants'
  loop
    for fn in
      select p.oid::regprocedure from pg_catalog.pg_proc p
      where p.pronamespace = 'pgflow'::regnamespace and p.proname = saved.function_name
    loop
      execute format('grant execute on function %s to %I', fn, saved.grantee);
    end loop;
  end loop;
end
$$;
