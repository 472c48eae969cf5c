-- mirror_functions(functions): define, in schema pgflow of the proxy, one PL/Proxy function
-- per entry of functions, a jsonb array of {"name", "arguments", "arity"} read from a
-- shard's catalog (pg_get_function_arguments, pronargs) by `pgflow install --proxy`.
-- * Each mirror has exactly the shard's parameters (names, types, defaults), so named
--   arguments work as on one database, and runs the call on every shard (RUN ON ALL),
--   returning one row per shard: the shard's result as text.
-- * Mirrors follow the shards' schema version: every previous PL/Proxy function of a listed
--   name is dropped first, so a signature that changed in an upgrade leaves no stale
--   overload behind. Only names in broadcast_functions() are accepted.
-- Returns the number of functions defined.
create or replace function pgflow_proxy.mirror_functions(functions jsonb)
returns int
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
as $$
declare
  f record;
  old regprocedure;
  params text;
  defined int := 0;
begin
  for old in
    select p.oid::regprocedure from pg_catalog.pg_proc p
    join pg_catalog.pg_language l on l.oid = p.prolang
    where p.pronamespace = 'pgflow'::regnamespace and l.lanname = 'plproxy'
      and p.proname = any(pgflow_proxy.broadcast_functions())
  loop
    execute format('drop function %s', old);
  end loop;
  for f in
    select e ->> 'name' as name, e ->> 'arguments' as arguments, (e ->> 'arity')::int as arity
    from jsonb_array_elements(functions) as e
  loop
    if not f.name = any(pgflow_proxy.broadcast_functions()) then
      raise exception using errcode = 'PGF21',
        message = format('pgflow.%s is not a function the proxy sends to every shard', f.name);
    end if;
    select coalesce(string_agg('$' || i, ', ' order by i), '') into params
    from generate_series(1, f.arity) as i;
    execute format(
      'create function pgflow.%I(%s) returns setof text language plproxy as %L',
      f.name, f.arguments,
      format('cluster %L; run on all; select t::text as %I from pgflow.%I(%s) as t;',
        'pgflow_shards', f.name, f.name, params));
    defined := defined + 1;
  end loop;
  return defined;
end;
$$;
