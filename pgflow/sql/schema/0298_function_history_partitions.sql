-- history_partitions(): the partitions of the run history, oldest first, then the default
-- one: month ('2026-12', or 'default'), the run ids they hold ([lower_run_id, upper_run_id),
-- NULL for the default), the runs in them as the statistics estimate (NULL before the
-- first ANALYZE) and the bytes of the three tables' partitions with their indexes.
-- Reads the catalog only; takes no lock beyond the catalog's.
create or replace function pgflow.history_partitions()
returns table (month text, lower_run_id uuid, upper_run_id uuid, runs bigint, bytes bigint)
language sql
stable
security definer
set search_path = pg_catalog, pg_temp
as $$
  select coalesce(to_char(to_date(p.suffix, 'YYYYMM'), 'YYYY-MM'), 'default'),
    b.bounds[1]::uuid, b.bounds[2]::uuid,
    nullif(greatest(c.reltuples, -1), -1)::bigint,
    (select sum(pg_catalog.pg_total_relation_size(x.oid))::bigint
     from pg_catalog.pg_class x
     where x.relnamespace = 'pgflow'::regnamespace
       and x.relname in ('runs' || p.tail, 'step_states' || p.tail, 'step_tasks' || p.tail))
  from pg_catalog.pg_inherits i
  join pg_catalog.pg_class c on c.oid = i.inhrelid
  cross join lateral (select substring(c.relname from '^runs_p([0-9]{6})$') as suffix,
    substring(c.relname from '^runs(_.*)$') as tail) as p
  cross join lateral (select regexp_match(pg_catalog.pg_get_expr(c.relpartbound, c.oid),
    'FROM [(]''([^'']+)''[)] TO [(]''([^'']+)''[)]') as bounds) as b
  where i.inhparent = 'pgflow.runs'::regclass
  order by p.suffix is null, b.bounds[1]::uuid;
$$;
