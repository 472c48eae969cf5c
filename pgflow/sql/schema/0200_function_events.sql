-- Events (LISTEN/NOTIFY).
--
-- * Channel `pgflow_tasks`, payload = flow slug: tasks of that flow just became claimable.
--   Workers LISTEN here, so a dependent step's task is claimed within milliseconds.
-- * Channel `pgflow_cancelled`, payload = run id: live tasks of that run were cancelled
--   (_signal_cancelled); workers LISTEN here too, so running handlers see ctx.cancelled.
-- * Channel `pgflow_run_<run_id>`: run and step status changes of one run, as JSON
--   {"event": "run:completed" | "step:<slug>:started" ..., "run_id", "flow_slug",
--   "step_slug", "status"}. Outputs are never inlined, so payloads stay far below the
--   8000-byte NOTIFY limit (slugs are at most 128 characters); readers fetch them with
--   get_run_with_states. Notifications are delivered at commit, and identical ones inside
--   one transaction are merged by Postgres.
-- Both are plpgsql rather than SQL functions: plpgsql caches its plans, and these run on
-- every state change.
--
-- Notify only when it can wake someone. A committing transaction that notified takes one
-- database-wide lock and holds it through its WAL flush, so notifying commits cannot share
-- a group commit. _emit notifies only while a live listener watches the run (or every run)
-- and _wake_workers only while a live task listener of the flow (or of every flow) is
-- waiting, or while none is registered for it at all (processes that LISTEN without
-- registering: earlier versions, SQL consumers). See pgflow.listeners (0046).
--
-- No lost wake-ups: the barrier. A listener (1) LISTENs, (2) registers and commits (or, a
-- worker, commits a short claim that sets `waiting`), (3) runs the barrier of its keys
-- (sync_tasks / sync_run: for each key, the exclusive advisory lock is taken and given
-- back at once), (4) reads the state again (claims, reads the run) in a later statement.
-- A notifier skips a notification only on a look it made after taking the shared advisory
-- lock of its key (a two-int advisory lock: key space 1885824628 for flows, 1885824626 for
-- runs, then a bucket of 16; pgflow's other advisory locks use the one-bigint form, a
-- different key space), in a later statement (a fresh READ COMMITTED snapshot). It holds
-- the lock until it commits. Take a notifier N that makes work W (claimable tasks, a run
-- event) and does not notify:
-- * N got its lock before the barrier got it: the exclusive lock waits until N has ended,
--   so N committed W before (4), and (4) sees W.
-- * N got its lock after the barrier got it: impossible, since (2) committed before the
--   barrier, so N's look after its lock saw the registration and N notified (and N
--   commits after (1), so that notification is delivered).
-- * N could not get its lock (pg_try_advisory_xact_lock_shared: a barrier holds the key or
--   waits for it): impossible, N then notifies.
-- Notifiers never wait on the lock (a try-lock), so they can never queue behind a barrier
-- or deadlock with one; a barrier waits only for the notifiers of its key in flight, and
-- holds one key at a time. A notifier takes its try-lock first and then looks once, so
-- every case costs one look: a skip (nobody watches the run, every worker of the flow is
-- busy: the common case under load), and a notification alike. (Looking first without the
-- lock, and again after it only to skip, cost a skip two looks.) Transactions that are not
-- READ COMMITTED (their snapshot may predate the registration) always notify. Bucketing
-- bounds what one transaction holds: at most 16 + 16 of these locks, however many runs
-- and flows it touches.
-- _emit(run_id, flow_slug, event, status, step_slug): one run event, by the protocol above
-- (_emit_events, 0201_function_emit_events.sql, implements it for one event or many).
create or replace function pgflow._emit(
  run_id uuid, flow_slug text, event text, status text, step_slug text default null
)
returns void
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
as $$
begin
  perform pgflow._emit_events(
    array[pgflow._event(run_id, flow_slug, event, status, step_slug)]);
end;
$$;

create or replace function pgflow._wake_workers(flow_slug text)
returns void
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
set plan_cache_mode = force_generic_plan
as $$
declare
  flows text[] := array[flow_slug, '*'];
  locked boolean;
begin
  -- as in _emit: skip only on a look made after the shared lock
  locked := pg_try_advisory_xact_lock_shared(1885824628, hashtext(flow_slug) & 15);
  if locked and current_setting('transaction_isolation') = 'read committed'
     and not exists (select 1 from pgflow.listeners l
                     where l.flow_slug = any(flows) and l.waiting
                       and l.expires_at > pg_catalog.now())
     and exists (select 1 from pgflow.listeners l
                 where l.flow_slug = any(flows) and l.waiting = any('{t,f}'::boolean[])
                   and l.expires_at > pg_catalog.now())
  then
    return;
  end if;
  perform pg_notify('pgflow_tasks', flow_slug);
end;
$$;
