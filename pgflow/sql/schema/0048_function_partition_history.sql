-- _partition_history(): turn the runtime tables (runs, step_states, step_tasks) into tables
-- partitioned by run id, if they are not yet, and give the current month and the next two
-- their partitions (_add_history_partition). Idempotent; a fresh install and an upgrade go
-- the same way, so both build the same schema.
-- * Run ids are UUIDv7 (pgflow._uuid7()): ordered by start time, so a range of ids is a
--   range of start times and a month's runs, with their step states and tasks, live in one
--   partition that retention drops whole (drop_history_partitions). Every primary key leads
--   with run_id, so every lookup of a run, step or task reads one partition.
-- * The existing table becomes the DEFAULT partition, <table>_default, with its rows and
--   indexes (renamed <table>_default<suffix>): nothing is copied or rebuilt. It keeps the
--   history from before partitioning, and later takes any row whose month has no partition
--   (an id a caller chose that is not UUIDv7). The parent gets the same columns,
--   constraints and indexes, under the names the table had.
-- * Privileges granted on a table are granted on its parent too. A view a user defined on
--   one of these tables keeps reading the renamed table, i.e. only the history from before
--   partitioning: a WARNING names each such view, to be created again.
-- * Locks: ACCESS EXCLUSIVE on the three tables until the caller's transaction commits (it
--   runs inside the schema migration).
create or replace function pgflow._partition_history()
returns void
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
as $$
declare
  parent text;
  legacy text;
  idx record;
  definition text;
  grant_ record;
begin
  foreach parent in array array['runs', 'step_states', 'step_tasks'] loop
    continue when (select c.relkind from pg_catalog.pg_class c
                   where c.oid = format('pgflow.%I', parent)::regclass) = 'p';
    legacy := parent || '_default';
    execute format('alter table pgflow.%I rename to %I', parent, legacy);
    execute format('create table pgflow.%I (like pgflow.%I including defaults including '
      || 'constraints including storage including compression including comments) '
      || 'partition by range (run_id)', parent, legacy);
    for idx in
      select c.relname as name, i.indisprimary as is_primary,
        pg_catalog.pg_get_indexdef(i.indexrelid) as def
      from pg_catalog.pg_index i
      join pg_catalog.pg_class c on c.oid = i.indexrelid
      where i.indrelid = format('pgflow.%I', legacy)::regclass
      order by c.relname
    loop
      execute format('alter index pgflow.%I rename to %I', idx.name,
        legacy || substr(idx.name, length(parent) + 1));
      definition := substring(idx.def from ' USING .*$');
      if idx.is_primary then
        execute format('alter table pgflow.%I add constraint %I primary key %s', parent,
          idx.name, substring(definition from '[(].*[)]$'));
      else
        execute format('create index %I on pgflow.%I%s', idx.name, parent, definition);
      end if;
    end loop;
    execute format('alter table pgflow.%I attach partition pgflow.%I default', parent, legacy);
    for grant_ in
      select a.privilege_type, coalesce(quote_ident(r.rolname), 'public') as grantee
      from pg_catalog.pg_class c
      cross join lateral pg_catalog.aclexplode(c.relacl) a
      left join pg_catalog.pg_roles r on r.oid = a.grantee
      where c.oid = format('pgflow.%I', legacy)::regclass and a.grantee <> c.relowner
    loop
      execute format('grant %s on pgflow.%I to %s', grant_.privilege_type, parent,
        grant_.grantee);
    end loop;
    for grant_ in
      select distinct v.oid::regclass::text as view_name
      from pg_catalog.pg_depend d
      join pg_catalog.pg_rewrite w on w.oid = d.objid
      join pg_catalog.pg_class v on v.oid = w.ev_class
      where d.classid = 'pg_catalog.pg_rewrite'::regclass
        and d.refobjid = format('pgflow.%I', legacy)::regclass and v.oid <> d.refobjid
    loop
      raise warning 'view % reads pgflow.%, which is now only the history from before '
        'partitioning', grant_.view_name, legacy
        using hint = format('Create the view again on pgflow.%I.', parent);
    end loop;
  end loop;
  for m in 0..2 loop
    perform pgflow._add_history_partition(pgflow._utc_month(clock_timestamp(), m));
  end loop;
end;
$$;
