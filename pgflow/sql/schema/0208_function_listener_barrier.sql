-- _listener_barrier(key_space, buckets): the barrier of the notification protocol (see
-- 0200_function_events.sql): for each bucket of the key space, in order, take the
-- exclusive transaction advisory lock (key_space, bucket) and give it back at once. It
-- returns once every notifier that held the shared lock of one of these keys when the
-- barrier reached it has ended, so a read made after it (in a later statement or
-- transaction) sees their work.
-- * Each lock is taken in a subtransaction that is then rolled back, which releases it (a
--   lock taken after a savepoint goes when the savepoint is rolled back): one key is held
--   at a time and only for an instant, nothing stays held if the statement is cancelled,
--   and no session state is left, so it works through a transaction-pooling PgBouncer.
-- * While it waits for a key, notifiers of that key do not wait behind it: their try-lock
--   fails and they notify without looking.
-- * Returns true; false when a key stayed held for 2 s (lock_timeout: a transaction that
--   notifies and stays open that long, or a session holding the advisory lock): the barrier
--   gives up on the remaining keys, and the caller must not rely on notifications for that
--   transaction's work (it reads again later: a worker's poll, a client's re-read).
-- NULL buckets are skipped; NULL or empty buckets: nothing to wait for, true.
create or replace function pgflow._listener_barrier(key_space int, buckets int[])
returns boolean
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
set lock_timeout = '2s'
as $$
declare
  bucket int;
begin
  for bucket in select distinct b from unnest(buckets) as b where b is not null order by b
  loop
    begin
      perform pg_advisory_xact_lock(key_space, bucket);
      raise exception using errcode = 'PGF99';  -- roll the subtransaction back
    exception
      when sqlstate 'PGF99' then
        null;
      when lock_not_available then
        return false;
    end;
  end loop;
  return true;
end;
$$;
