-- _drop_history_partitions(older_than): drop the monthly partitions of runs, step_states and
-- step_tasks whose every run finished more than `older_than` ago (NULL: more than its flow's
-- retention ago, and only runs of flows that have one), with the runs' stored values (those
-- of external stores are tombstoned for the workers, as prune_batch does); returns one row
-- (month, flow, status, runs) per month, flow and status of the runs dropped, oldest first.
-- * A month is looked at only once it is over (by run ids, i.e. start times). It is kept
--   while any of its runs is live or finished too recently: such a month is left to
--   prune_batch, run by run, and goes once its last run is old enough.
-- * The default partition (history from before partitioning, ids that are not UUIDv7) is
--   never dropped: prune_batch deletes its rows.
-- * Locks: the runs of a month are checked without a lock first; for the months that pass,
--   the three tables are locked ACCESS EXCLUSIVE, the runs checked again and counted in one
--   read (so nothing can be added or changed after the check) and the partitions dropped.
--   Other work on the tables waits for that read of those months' runs. Stored values go by
--   the month's range of run ids. lock_timeout 2 s: when the
--   locks cannot be had (or a deadlock is detected), nothing is dropped and nothing
--   returned; the next call tries again.
create or replace function pgflow._drop_history_partitions(older_than interval)
returns table (month text, flow text, status text, runs int)
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
set lock_timeout = '2s'
as $$
declare
  now_ timestamptz := pgflow._now();
  part record;
  doomed text[] := '{}'::text[];
  kept text := 'select exists (select 1 from pgflow.%I r left join pgflow.flows f '
    || 'on f.flow_slug = r.flow_slug where r.finished_at is null or r.finished_at >= '
    || 'coalesce($1 - $2, $1 - f.retention) or ($2 is null and f.retention is null))';
  -- under the locks, one read of the month: whether a run keeps it, and the runs per flow
  -- and status ($3: the month's name)
  survey text := 'select coalesce(bool_or(g.busy), false), coalesce(jsonb_agg('
    || 'jsonb_build_array($3, g.flow_slug, g.status, g.n) order by g.flow_slug, g.status), '
    || '''[]'') from (select r.flow_slug, r.status, count(*)::int as n, bool_or('
    || 'r.finished_at is null or r.finished_at >= coalesce($1 - $2, $1 - f.retention) '
    || 'or ($2 is null and f.retention is null)) as busy from pgflow.%I r '
    || 'left join pgflow.flows f on f.flow_slug = r.flow_slug group by 1, 2) as g';
  busy boolean;
  counts jsonb;
  month_suffix text;
  month_name text;
  lo uuid;
  hi uuid;
  dropped jsonb := '[]'::jsonb;
begin
  for part in
    select c.relname as name, p.suffix,
      pgflow._utc_month(to_date(p.suffix, 'YYYYMM')::timestamp at time zone 'UTC', 1) as ends_at
    from pg_catalog.pg_inherits i
    join pg_catalog.pg_class c on c.oid = i.inhrelid
    cross join lateral (select substring(c.relname from '^runs_p([0-9]{6})$') as suffix) as p
    where i.inhparent = 'pgflow.runs'::regclass and p.suffix is not null
    order by c.relname
  loop
    continue when part.ends_at > now_ - coalesce(_drop_history_partitions.older_than,
      interval '0');
    execute format(kept, part.name) into busy using now_, _drop_history_partitions.older_than;
    if not busy then
      doomed := doomed || part.suffix;
    end if;
  end loop;
  if cardinality(doomed) = 0 then
    return;
  end if;
  begin
    lock table pgflow.step_tasks, pgflow.step_states, pgflow.runs in access exclusive mode;
    foreach month_suffix in array doomed loop
      month_name := to_char(to_date(month_suffix, 'YYYYMM'), 'YYYY-MM');
      execute format(survey, 'runs_p' || month_suffix) into busy, counts
        using now_, _drop_history_partitions.older_than, month_name;
      continue when busy;
      dropped := dropped || counts;
      -- the month's run ids are exactly its partition's range: its stored values by range
      select h.lower_run_id, h.upper_run_id into lo, hi
      from pgflow.history_partitions() h where h.month = month_name;
      with gone as (
        delete from pgflow.blobs b where b.run_id >= lo and b.run_id < hi
        returning b.store, b.run_id, b.blob_id
      )
      insert into pgflow.blob_tombstones (store, run_id, blob_id)
      select g.store, g.run_id, g.blob_id from gone g where g.store <> 'pg'
      on conflict do nothing;
      delete from pgflow.blob_chunks c where c.run_id >= lo and c.run_id < hi;
      execute format('drop table pgflow.%I, pgflow.%I, pgflow.%I',
        'step_tasks_p' || month_suffix, 'step_states_p' || month_suffix,
        'runs_p' || month_suffix);
    end loop;
  exception when lock_not_available or deadlock_detected then
    return;
  end;
  return query select d ->> 0, d ->> 1, d ->> 2, (d ->> 3)::int
    from jsonb_array_elements(dropped) as d;
end;
$$;

-- drop_history_partitions(older_than): drop the months of run history whose every run
-- finished more than `older_than` ago, in one step per month instead of prune's run by run
-- deletes; returns (month, flow, status, runs) per month, flow and status dropped (see
-- _drop_history_partitions for the rules and locks). `pgflow prune` calls it first.
-- * older_than NULL or negative: PGF08.
create or replace function pgflow.drop_history_partitions(older_than interval)
returns table (month text, flow text, status text, runs int)
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
begin
  if drop_history_partitions.older_than is null
    or drop_history_partitions.older_than < interval '0' then
    perform pgflow._raise('PGF08', format('drop_history_partitions: older_than must be an '
      || 'interval of 0 or more, got %s',
      coalesce(drop_history_partitions.older_than::text, 'NULL')), 'Pass e.g. ''90 days''.');
  end if;
  return query select * from pgflow._drop_history_partitions(drop_history_partitions.older_than);
end;
$$;
