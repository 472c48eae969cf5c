-- Runtime tables: runs, step_states, step_tasks, workers.
--
-- Deliberately no foreign keys from runtime rows to the definition tables or between runtime
-- tables: a foreign-key check takes a KEY SHARE lock on the referenced row, and every run
-- references the same flow row, which would turn it into a hot spot. The SQL functions are
-- the only writers and keep the rows consistent; delete_flow_and_data and prune delete
-- children explicitly.
--
-- Hot paths read only live rows through partial indexes, so their cost does not grow with
-- the number of finished runs kept in the tables. Columns that change as a run progresses
-- (status, counters, finished_at) are deliberately not indexed on runs and step_states, and
-- those tables leave 20% of each page free, so their updates stay HOT (no index writes).
-- _uuid7(): a time-ordered UUID (version 7: 48-bit Unix milliseconds, then random bits).
-- Run ids prefix the primary keys of runs, step_states and step_tasks; time-ordered ids keep
-- index inserts on the right-most pages instead of spreading them over every leaf of large
-- indexes (fewer pages touched and fewer full-page images in WAL as history grows).
-- PostgreSQL 18 has uuidv7(); this works on 14-17 as well.
create or replace function pgflow._uuid7()
returns uuid
language sql
volatile
set search_path = pg_catalog, pg_temp
as $$
  select encode(
    set_bit(set_bit(
      overlay(uuid_send(gen_random_uuid())
        placing substring(int8send((extract(epoch from clock_timestamp()) * 1000)::bigint) from 3)
        from 1 for 6),
      52, 1), 53, 1),
    'hex')::uuid;
$$;

create table if not exists pgflow.runs (
  run_id uuid primary key default pgflow._uuid7(),
  flow_slug text not null,
  status text not null default 'started'
    check (status in ('started', 'completed', 'failed', 'cancelled')),
  input jsonb not null,
  output jsonb,
  error_message text,
  remaining_steps int not null check (remaining_steps >= 0),
  started_at timestamptz not null default pgflow._now(),
  completed_at timestamptz,
  failed_at timestamptz,
  cancelled_at timestamptz,
  finished_at timestamptz,
  flow_checksum text,
  input_bytes bigint,
  output_bytes bigint,
  -- the W3C trace context ({"traceparent": ..., "tracestate": ...}) of the span that
  -- started the run (Client.start with OpenTelemetry installed), or NULL: task spans on
  -- any host continue that trace (docs/telemetry.md)
  trace_context jsonb,
  check ((status = 'started') = (finished_at is null)),
  -- higher first: the run's tasks are tagged in its priority's band (see _queue_head)
  priority int not null default 0 check (priority between -100 and 100),
  -- when the input is stored by reference (docs/large-values.md): the fields of it that the
  -- flow's keyed limits read ({key: value}), kept inline so claim_tasks can group the run
  -- without fetching the value; NULL when the input is inline
  limit_keys jsonb
) with (fillfactor = 80);

create index if not exists runs_by_flow on pgflow.runs (flow_slug, started_at desc);
create index if not exists runs_by_started on pgflow.runs (started_at desc);

create table if not exists pgflow.step_states (
  run_id uuid not null,
  step_slug text not null,
  flow_slug text not null,
  step_index int not null,
  step_type text not null default 'single' check (step_type in ('single', 'map')),
  status text not null default 'created'
    check (status in ('created', 'started', 'completed', 'failed', 'skipped', 'cancelled')),
  remaining_deps int not null check (remaining_deps >= 0),
  remaining_tasks int check (remaining_tasks >= 0),
  initial_tasks int check (initial_tasks >= 0),
  output jsonb,
  error_message text,
  skip_reason text,
  created_at timestamptz not null default pgflow._now(),
  started_at timestamptz,
  completed_at timestamptz,
  failed_at timestamptz,
  skipped_at timestamptz,
  cancelled_at timestamptz,
  output_bytes bigint,
  primary key (run_id, step_slug)
) with (fillfactor = 80);

-- One row per task; the row itself is the queue entry (no separate message table).
-- A task is claimable when status = 'queued', available_at <= now() and priority_at is
-- set. priority_at is a fair-queuing tag: a task that becomes ready joins at the head of
-- its flow's queue (least(now(), the flow's oldest ready tag)), plus one millisecond per
-- task_index, so a run that arrives behind a large map or a busy run is served within one
-- claim instead of after them. A task waiting for a time (start_delay, retry backoff, a
-- release) has priority_at NULL and is tagged the same way by claim_tasks once due.
-- A run's priority p shifts its tags p * 3650 days into the past (see _queue_head), so
-- higher priorities sort first and each priority keeps its own fair queue.
-- input holds the element of a map task (copied once when the map starts); other tasks get
-- their input built at claim time from the run input or the dependencies' outputs.
-- input_bytes is the size of a fan-in task's input (sum of its dependencies' outputs), so a
-- task whose input cannot be built is failed instead of handed out; output_bytes is the
-- size of the reported output. attempts_count numbers the claims (the fencing token: never
-- handed out twice); releases counts those given back unrun by a stopping worker, which do
-- not use up max_attempts. forgiven_attempts counts the attempts retry_run gave a fresh
-- budget for: attempts_count keeps counting across a retry (it is the fence), but only
-- attempts_count - releases - forgiven_attempts count against max_attempts.
create table if not exists pgflow.step_tasks (
  run_id uuid not null,
  step_slug text not null,
  task_index int not null default 0 check (task_index >= 0),
  flow_slug text not null,
  status text not null default 'queued'
    check (status in ('queued', 'started', 'completed', 'failed', 'cancelled')),
  attempts_count int not null default 0 check (attempts_count >= 0),
  input jsonb,
  output jsonb,
  error_message text,
  error_type text,
  error_traceback text,
  worker_id uuid,
  queued_at timestamptz not null default pgflow._now(),
  available_at timestamptz not null default pgflow._now(),
  priority_at timestamptz default pgflow._now(),
  started_at timestamptz,
  leased_until timestamptz,
  completed_at timestamptz,
  failed_at timestamptz,
  cancelled_at timestamptz,
  input_bytes bigint,
  output_bytes bigint,
  releases int not null default 0,
  forgiven_attempts int not null default 0 check (forgiven_attempts >= 0),
  primary key (run_id, step_slug, task_index),
  check ((status = 'started') = (leased_until is not null))
);

create index if not exists step_tasks_ready on pgflow.step_tasks (flow_slug, priority_at)
  where status = 'queued';
-- The same per step, for worker pools (claim_tasks with step_slugs): a pool serving one
-- step finds its tasks without walking the flow's backlog of other steps. Keyed by the
-- expression 'flow.step' (slugs never contain a dot), not by the two columns: a query on
-- that expression can use this index only, so the planner never walks step_tasks_ready
-- instead, whatever the statistics say.
create index if not exists step_tasks_ready_by_step
  on pgflow.step_tasks ((flow_slug || '.' || step_slug), priority_at)
  where status = 'queued';
-- Tasks waiting for a time, by when they become due (claim_tasks tags them then).
create index if not exists step_tasks_waiting on pgflow.step_tasks (flow_slug, available_at)
  where status = 'queued' and priority_at is null;
-- The predicate is `leased_until is not null` (equivalent to status = 'started' by the check
-- constraint), not `status = 'started'`: a completion's `where <primary key> and status =
-- 'started'` must never be planned as a walk of this index instead of a primary-key lookup.
-- `leased_until < now()` (lease expiry) still implies it, so expiry uses the index.
create index if not exists step_tasks_leased on pgflow.step_tasks (leased_until)
  where leased_until is not null;
-- Finished tasks per step by the time they finished, for history statistics (pgflow stats)
-- and the event replay (pgflow events): a range of one step's finish times, read without
-- touching the table (the columns those queries need are included). Partial, so claims,
-- retries and releases never touch it: a task enters it once, when it finishes (one index
-- entry per task, on finished rows only). Queries use the same finish-time expression.
create index if not exists step_tasks_finished on pgflow.step_tasks (flow_slug, step_slug, (
  case status when 'completed' then completed_at when 'failed' then failed_at
    else cancelled_at end))
  include (status, task_index, attempts_count, releases, forgiven_attempts, started_at,
    available_at, completed_at, failed_at, cancelled_at)
  where status in ('completed', 'failed', 'cancelled');

-- Workers announce themselves and heartbeat; claiming does not require registration.
create table if not exists pgflow.workers (
  worker_id uuid primary key,
  flow_slugs text[] not null default '{}',
  hostname text,
  pid int,
  started_at timestamptz not null default pgflow._now(),
  last_heartbeat_at timestamptz not null default pgflow._now(),
  stopped_at timestamptz
);

-- What claim_tasks returns for each task. trace_context is the run's (see runs); claim_lag
-- is the seconds between the task becoming claimable (available_at) and this claim.
do $$
begin
  if not exists (
    select 1 from pg_catalog.pg_type t
    join pg_catalog.pg_namespace n on n.oid = t.typnamespace
    where n.nspname = 'pgflow' and t.typname = 'claimed_task'
  ) then
    create type pgflow.claimed_task as (
      run_id uuid,
      flow_slug text,
      step_slug text,
      task_index int,
      attempt int,
      input jsonb,
      flow_input jsonb,
      deadline timestamptz,
      trace_context jsonb,
      claim_lag double precision
    );
  end if;
end
$$;
