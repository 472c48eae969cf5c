-- _add_history_partition(month): give the UTC month of `month` its partition in each runtime
-- table (runs, step_states, step_tasks), named <table>_pYYYYMM and holding the run ids of
-- that month: [_uuid7_floor(month start), _uuid7_floor(next month start)). Returns true
-- when it created them, false when they were there already (or `month` is NULL).
-- * A month that has begun may have rows in the default partitions already (inserted while
--   it had no partition): they stay there, and the new partition begins at the current
--   millisecond instead. Rows of the new range found in the default partitions (ids a caller
--   chose that are not UUIDv7, ids of the future) move into it.
-- * Locks: the three default partitions ACCESS EXCLUSIVE, taken first, so nothing is inserted
--   into the range while it moves; each parent SHARE UPDATE EXCLUSIVE (ATTACH PARTITION), so
--   DML on other partitions goes on. Attaching scans a default partition to prove that it
--   holds no row of the new range, so keep the default partitions small (docs/scaling.md).
--   Callers set lock_timeout.
-- * The new partitions' indexes are named <partition><parent index suffix>
--   (runs_p202612_by_flow for runs_by_flow), the same on every database.
create or replace function pgflow._add_history_partition(month timestamptz)
returns boolean
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
as $$
declare
  first timestamptz := pgflow._utc_month(_add_history_partition.month, 0);
  suffix text := to_char(first at time zone 'UTC', 'YYYYMM');
  lo uuid := pgflow._uuid7_floor(first);
  hi uuid := pgflow._uuid7_floor(pgflow._utc_month(first, 1));
  parent text;
  part text;
  columns text;
  options text[];
  idx record;
begin
  if _add_history_partition.month is null or to_regclass(format('pgflow.%I', 'runs_p' || suffix)) is not null then
    return false;
  end if;
  lock table pgflow.runs_default, pgflow.step_states_default, pgflow.step_tasks_default
    in access exclusive mode;
  if exists (select 1 from pgflow.runs_default d
             where d.run_id >= lo and d.run_id < pgflow._uuid7_floor(clock_timestamp())) then
    lo := pgflow._uuid7_floor(clock_timestamp());
  end if;
  foreach parent in array array['runs', 'step_states', 'step_tasks'] loop
    part := parent || '_p' || suffix;
    execute format('create table pgflow.%I (like pgflow.%I including defaults including '
      || 'constraints including storage including compression)', part, parent);
    select c.reloptions into options from pg_catalog.pg_class c
    where c.oid = format('pgflow.%I', parent || '_default')::regclass;
    if options is not null then
      execute format('alter table pgflow.%I set (%s)', part, array_to_string(options, ', '));
    end if;
    select string_agg(quote_ident(a.attname), ', ' order by a.attnum) into columns
    from pg_catalog.pg_attribute a
    where a.attrelid = format('pgflow.%I', parent)::regclass and a.attnum > 0
      and not a.attisdropped;
    execute format('with moved as (delete from pgflow.%I d where d.run_id >= $1 '
      || 'and d.run_id < $2 returning d.*) insert into pgflow.%I (%s) select %s from moved',
      parent || '_default', part, columns, columns) using lo, hi;
    execute format('alter table pgflow.%I attach partition pgflow.%I for values from (%L) '
      || 'to (%L)', parent, part, lo, hi);
    for idx in
      select c.relname as name, p.relname as parent_index
      from pg_catalog.pg_index i
      join pg_catalog.pg_class c on c.oid = i.indexrelid
      join pg_catalog.pg_inherits h on h.inhrelid = i.indexrelid
      join pg_catalog.pg_class p on p.oid = h.inhparent
      where i.indrelid = format('pgflow.%I', part)::regclass
        and c.relname <> part || substr(p.relname, length(parent) + 1)
    loop
      execute format('alter index pgflow.%I rename to %I', idx.name,
        part || substr(idx.parent_index, length(parent) + 1));
    end loop;
  end loop;
  return true;
end;
$$;
