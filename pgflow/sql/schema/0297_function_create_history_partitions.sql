-- create_history_partitions(months_ahead): make sure the current month and the next
-- `months_ahead` months (UTC) have their partitions of runs, step_states and step_tasks
-- (_add_history_partition); returns the months it created ('2027-01'), nothing when all
-- were there. Workers call it every hour and at start-up, so a month's partitions exist
-- long before its first run; start_flow never waits for it (a run whose month has no
-- partition goes to the default partition, and nothing is lost).
-- * months_ahead NULL, below 0 or above 24: PGF08.
-- * One caller at a time: a transaction-level advisory try-lock; a caller that does not get
--   it returns nothing at once (another is at it).
-- * Locks: see _add_history_partition. lock_timeout 2 s: while it waits for a lock, other
--   work on the tables queues behind it, so it waits no longer than that; when the default
--   partitions stay busy longer, it fails with SQLSTATE 55P03 and changes nothing, and the
--   next call tries again.
create or replace function pgflow.create_history_partitions(months_ahead int default 2)
returns setof text
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
set lock_timeout = '2s'
as $$
declare
  now_ timestamptz := clock_timestamp();
  month timestamptz;
begin
  if create_history_partitions.months_ahead is null
    or create_history_partitions.months_ahead not between 0 and 24 then
    perform pgflow._raise('PGF08', format('create_history_partitions: months_ahead must be '
      || '0 to 24, got %s', coalesce(create_history_partitions.months_ahead::text, 'NULL')),
      'Pass e.g. 2: the current month and the next two.');
  end if;
  if not pg_try_advisory_xact_lock(hashtext('pgflow'), hashtext('partitions')) then
    return;
  end if;
  for i in 0..create_history_partitions.months_ahead loop
    month := pgflow._utc_month(now_, i);
    if pgflow._add_history_partition(month) then
      return next to_char(month at time zone 'UTC', 'YYYY-MM');
    end if;
  end loop;
end;
$$;
