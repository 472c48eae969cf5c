-- Named runtime queries. Each block starts with "-- name: <name>", then an optional
-- one-line "-- description", then the SQL until the next "-- name:" line.
-- Values always go through driver parameters (%(name)s); Python refers to a query by name.

-- name: schema_lock
-- Serialise installers: a transaction-scoped advisory lock (key = the bytes of "pgflow").
select pg_advisory_xact_lock(123589402324855);

-- name: schema_migrations_create
-- Bootstrap the bookkeeping table outside the migrations, so the lock + record logic works
-- for the very first migration too. No parameters: runs as one multi-statement batch.
create schema if not exists pgflow;
create table if not exists pgflow.schema_migrations (
  id int primary key,
  name text not null,
  checksum text not null,
  applied_at timestamptz not null default now()
);

-- name: schema_migrations_exists
-- Whether the bookkeeping table exists (read-only; status() must not create anything).
select to_regclass('pgflow.schema_migrations') is not null as present;

-- name: schema_foreign_objects
-- Tables, views, sequences and functions already in schema pgflow (0 when it is absent).
select (select count(*) from pg_catalog.pg_class c
        where c.relnamespace = to_regnamespace('pgflow'))
     + (select count(*) from pg_catalog.pg_proc p
        where p.pronamespace = to_regnamespace('pgflow')) as objects;

-- name: schema_migrations_list
-- Every applied migration, oldest first.
select id, name, checksum, applied_at from pgflow.schema_migrations order by id;

-- name: schema_migrations_insert
-- Record a migration first, in the same transaction that applies it.
insert into pgflow.schema_migrations (id, name, checksum)
values (%(id)s, %(name)s, %(checksum)s);

-- name: schema_version
-- The highest applied migration id, or NULL when none is applied.
select max(id) as version from pgflow.schema_migrations;

-- name: deploy_lock
-- Lock one flow until commit (exclusive, like create_flow and delete_flow_and_data).
select pg_advisory_xact_lock(pg_catalog.hashtext('pgflow.flow:' || %(slug)s));

-- name: deployed_flow
-- A deployed flow (no row: not deployed): status, checksum and shape (JSON text, numbers exact).
select f.status, coalesce(f.checksum, pgflow.flow_checksum(f.flow_slug)) as checksum,
       coalesce(f.declared_shape, pgflow.get_flow_shape(f.flow_slug))::text as shape
from pgflow.flows f
where f.flow_slug = %(slug)s;

-- name: doctor_history_partitions
-- The months of history with their estimated runs, and next month's name (UTC).
select h.month, h.runs,
  to_char(date_trunc('month', now(), 'UTC') at time zone 'UTC' + interval '1 month', 'YYYY-MM')
    as next_month
from pgflow.history_partitions() h;

-- name: doctor_can_inspect
-- Whether this role may read pgflow's definitions (true before pgflow is installed).
select to_regclass('pgflow.schema_migrations') is null
    or has_table_privilege('pgflow.schema_migrations', 'select') as can_inspect;

-- name: deploy_delete_flow
-- Development re-create: count the flow's runs, then delete the flow and all its data.
select (select count(*) from pgflow.runs r where r.flow_slug = %(slug)s)::int as runs_deleted,
       pgflow.delete_flow_and_data(%(slug)s) is null as deleted;

-- name: deploy_options
-- The runtime options (tunables) of a flow and its steps, one row per option (the input schema as a short digest).
select 'flow.' || o.key as name, o.value
from pgflow.flows f,
  jsonb_each(jsonb_build_object('max_attempts', f.opt_max_attempts,
    'base_delay', f.opt_base_delay, 'timeout', f.opt_timeout,
    'retention', coalesce(f.retention::text, 'none'), 'priority', f.priority,
    'input_schema', coalesce('md5:' || left(md5(f.input_schema::text), 8), 'none'))) o
where f.flow_slug = %(slug)s
union all
select s.step_slug || '.' || o.key, o.value
from pgflow.steps s,
  jsonb_each(jsonb_build_object('max_attempts', s.opt_max_attempts,
    'base_delay', s.opt_base_delay, 'timeout', s.opt_timeout,
    'start_delay', s.opt_start_delay)) o
where s.flow_slug = %(slug)s;

-- name: deploy_schedules
-- A flow's schedules as "schedule <name>" -> "<cron> <timezone> catch_up=<policy> input=<md5>".
select 'schedule ' || s.name as name,
       to_jsonb(format('%%s (%%s, catch_up=%%s, input md5:%%s)', s.cron, s.timezone, s.catch_up,
         left(md5(s.input::text), 8))) as value
from pgflow.schedules s
where s.flow_slug = %(slug)s;

-- name: deploy_limits
-- A flow's limits as "<kind> limit <scope>" -> "<max>[ per <n> s][ per <key>]".
select l.kind || ' limit ' || case when l.step_slug = '' then '(flow)' else l.step_slug end
         as name,
       to_jsonb(l.max_count::text
         || case when l.per is not null
              then format(' per %%s s', extract(epoch from l.per)::bigint) else '' end
         || case when l.key is not null then format(' per %%s', l.key) else '' end) as value
from pgflow.limits l
where l.flow_slug = %(slug)s
order by l.step_slug, l.kind;

-- name: deploy_clear_limits
-- Remove every limit of a flow (its code defines none); returns what was removed.
select pgflow.set_limits(%(slug)s, '[]') as changes;

-- name: deploy_clear_schedules
-- Remove every schedule of a flow (its code defines none); returns what was removed.
select pgflow.set_schedules(%(slug)s, '[]') as changes;

-- name: worker_claim_tasks
-- Lease up to max_tasks ready tasks of the worker's flows (and pool's steps), with inputs.
select run_id, flow_slug, step_slug, task_index, attempt, input, flow_input, deadline,
  trace_context, claim_lag
from pgflow.claim_tasks(%(flow_slugs)s::text[], %(worker_id)s::uuid, %(max_tasks)s::int,
  step_slugs => %(step_slugs)s::text[]);

-- name: worker_complete_tasks
-- Report finished tasks (parallel arrays, fenced by attempt); returns the refused ones.
with reported as (
  select * from pgflow.complete_tasks(%(run_ids)b::uuid[], %(step_slugs)b::text[],
    %(task_indexes)b::int[], %(outputs)b::jsonb[], %(attempts)b::int[])
)
select r.run_id, r.step_slug, r.task_index, r.attempt
from unnest(%(run_ids)b::uuid[], %(step_slugs)b::text[], %(task_indexes)b::int[],
  %(attempts)b::int[]) as r(run_id, step_slug, task_index, attempt)
left join reported t
  on t.run_id = r.run_id and t.step_slug = r.step_slug and t.task_index = r.task_index
where t.run_id is null or t.status <> 'completed' or t.attempts_count <> r.attempt;

-- name: worker_fail_tasks
-- Report failed attempts (parallel arrays, fenced by attempt); returns the refused ones.
with reported as (
  select * from pgflow.fail_tasks(%(run_ids)b::uuid[], %(step_slugs)b::text[],
    %(task_indexes)b::int[], %(error_messages)b::text[], %(attempts)b::int[],
    %(error_types)b::text[], %(error_tracebacks)b::text[])
)
select r.run_id, r.step_slug, r.task_index, r.attempt
from unnest(%(run_ids)b::uuid[], %(step_slugs)b::text[], %(task_indexes)b::int[],
  %(attempts)b::int[]) as r(run_id, step_slug, task_index, attempt)
left join reported t
  on t.run_id = r.run_id and t.step_slug = r.step_slug and t.task_index = r.task_index
where t.run_id is null or t.status not in ('queued', 'failed')
  or t.attempts_count <> r.attempt;

-- name: worker_release_tasks
-- Graceful shutdown: give back the tasks this worker still holds (attempt not counted).
select pgflow.release_tasks(%(worker_id)s::uuid) as released;

-- name: worker_register
-- Announce the worker (upsert) with the flows it serves.
select worker_id from pgflow.register_worker(%(worker_id)s::uuid, %(flow_slugs)s::text[],
  %(hostname)s::text, %(pid)s::int);

-- name: worker_active_schedules
-- The unpaused schedules of the worker's flows, with the tick after which ticks are due.
select flow_slug, name, cron, timezone, catch_up, since, db_now
from pgflow.active_schedules(%(flow_slugs)s::text[]);

-- name: worker_start_scheduled
-- Start one due schedule tick once (NULL: started elsewhere, paused, or skipped).
select pgflow.start_scheduled(%(flow_slug)s, %(schedule)s, %(tick)s::timestamptz, %(skip)s);

-- name: worker_heartbeat
-- The worker is alive; false when its row is gone (it then registers again).
select pgflow.heartbeat(%(worker_id)s::uuid) as known;

-- name: worker_apply_retention
-- Prune a batch of runs past their flow's retention (NULL: another worker is doing it).
select pgflow.apply_retention(%(max_runs)s::int) as pruned;

-- name: worker_create_history_partitions
-- Create the missing history partitions of this month and the next ones; the months created.
select m as month from pgflow.create_history_partitions(%(months_ahead)s::int) as m;

-- name: worker_stopped
-- Mark the worker as stopped.
select pgflow.worker_stopped(%(worker_id)s::uuid);

-- name: worker_cancelled_attempts
-- Of the attempts a worker is running, those that may no longer run (cancelled, taken over).
select run_id, step_slug, task_index, attempt
from pgflow.cancelled_attempts(%(run_ids)s::uuid[], %(step_slugs)s::text[],
  %(task_indexes)s::int[], %(attempts)s::int[]);

-- name: listen_tasks
-- Workers: wake up when tasks of a flow become claimable (payload: the flow slug).
listen pgflow_tasks;

-- name: listen_cancelled
-- Workers: live tasks of a run were cancelled (payload: the run id).
listen pgflow_cancelled;

-- name: listen_channel
-- Subscribe to a channel; {channel} is filled with psycopg.sql.Identifier.
listen {channel};

-- name: unlisten_channel
-- Unsubscribe from a channel; {channel} is filled with psycopg.sql.Identifier.
unlisten {channel};

-- name: listener_watch_run
-- Register (or renew) a run listener; false when it was not live before (run the barrier).
select pgflow.watch_run(%(listener_id)s::uuid, %(run_id)s::uuid, %(ttl_seconds)s::int);

-- name: listener_sync_run
-- The run listener's barrier; false when a transaction kept the run's key for 2 s.
select pgflow.sync_run(%(run_id)s::uuid);

-- name: listener_listen_tasks
-- Register (or renew) a task listener; false when it was not live before (run the barrier).
select pgflow.listen_tasks(%(listener_id)s::uuid, %(flow_slugs)s::text[],
  %(ttl_seconds)s::int);

-- name: listener_sync_tasks
-- The task listener's barrier; false when a transaction kept a flow's key for 2 s.
select pgflow.sync_tasks(%(flow_slugs)s::text[]);

-- name: listener_unwatch
-- Remove a listener's registrations (all of them, or the one of run_id).
select pgflow.unwatch(%(listener_id)s::uuid, %(run_id)s::uuid);

-- name: backend_pid
-- The server process of this session: differs from the handshake's pid behind a pooler.
select pg_catalog.pg_backend_pid() as pid;

-- name: client_start_flow
-- Start a run (idempotent when run_id is given and exists).
select run_id, flow_slug, status, input, output, error_message, started_at, completed_at,
  failed_at, cancelled_at, finished_at
from pgflow.start_flow(%(flow_slug)s::text, %(input)s::jsonb, %(run_id)s::uuid,
  trace_context => %(trace_context)s::jsonb, priority => %(priority)s::int);

-- name: client_get_run
-- A run with the state of each of its steps, its values (inputs, outputs) in separate columns.
-- The client decodes each value on its own, so one it cannot decode spoils only itself.
select jsonb_build_object(
    'run', (doc -> 'run') - 'input' - 'output',
    'steps', coalesce((select jsonb_agg(e.step - 'output' order by e.n)
      from jsonb_array_elements(doc -> 'steps') with ordinality as e (step, n)), '[]'::jsonb)
  ) as document,
  doc #> '{run,input}' as input,
  doc #> '{run,output}' as output,
  array(select e.step -> 'output'
    from jsonb_array_elements(doc -> 'steps') with ordinality as e (step, n)
    order by e.n) as step_outputs
from pgflow.get_run_with_states(%(run_id)s::uuid) as doc;

-- name: client_flow_input_schema
-- The JSON Schema stored with a flow for its run input, as text (NULL: none, or no such flow).
select pgflow.flow_input_schema(%(flow_slug)s::text)::text as schema;

-- name: client_retry_run
-- Start a failed or cancelled run again where it stopped (no-op on a live or completed run).
select run_id from pgflow.retry_run(%(run_id)s::uuid);

-- name: drop_history_partitions
-- Drop the months of history whose every run finished before older_than; runs per month,
-- flow and status.
select month, flow, status, runs
from pgflow.drop_history_partitions(%(older_than)s::interval);

-- name: prune_batch
-- Delete one batch of finished runs older than older_than; the deleted runs per flow and status.
select flow, status, runs
from pgflow.prune_batch(%(older_than)s::interval, %(flow_slug)s::text, %(statuses)s::text[],
  %(max_runs)s::int);

-- name: client_cancel_run
-- Cancel a live run and everything it has in flight (no-op on a finished run).
select run_id from pgflow.cancel_run(%(run_id)s::uuid);

-- name: client_list_runs
-- Recent runs, newest first, optionally of one flow, in one status, started since a time.
-- `since_at` (a timestamp) or `since_ago` (an interval back from the server's now()).
-- Walks runs_by_started (runs_by_flow with a flow) from the newest: O(limit + skipped rows).
select run_id, flow_slug, status, input, output, error_message, started_at, completed_at,
  failed_at, cancelled_at, finished_at
from pgflow.runs
where (%(flow_slug)s::text is null or flow_slug = %(flow_slug)s::text)
  and (%(status)s::text is null or status = %(status)s::text)
  and started_at >= coalesce(%(since_at)s::timestamptz, now() - %(since_ago)s::interval,
    '-infinity'::timestamptz)
order by started_at desc, run_id
limit %(limit)s::int;

-- name: flows_list
-- Deployed flows: checksum, status, step count, creation time and run counts by status.
-- Cost: one sequential scan of pgflow.runs grouped by flow and status, O(runs).
select f.flow_slug, coalesce(f.checksum, pgflow.flow_checksum(f.flow_slug)) as checksum,
  f.status, f.created_at,
  (select count(*) from pgflow.steps s where s.flow_slug = f.flow_slug)::int as steps,
  coalesce(r.runs, '{}'::jsonb) as runs
from pgflow.flows f
left join (
  select c.flow_slug, jsonb_object_agg(c.status, c.n) as runs
  from (select x.flow_slug, x.status, count(*) as n from pgflow.runs x
        group by x.flow_slug, x.status) c
  group by c.flow_slug
) r on r.flow_slug = f.flow_slug
order by f.flow_slug;

-- name: manifest_deployed_flow
-- One deployed flow for inspect/diff: shape (exact JSON text), options, stored input schema.
select f.flow_slug, f.status, f.created_at,
  coalesce(f.checksum, pgflow.flow_checksum(f.flow_slug)) as checksum,
  coalesce(f.declared_shape, pgflow.get_flow_shape(f.flow_slug))::text as shape,
  jsonb_build_object('max_attempts', f.opt_max_attempts, 'base_delay', f.opt_base_delay,
    'timeout', f.opt_timeout) as options,
  coalesce((select jsonb_object_agg(s.step_slug, jsonb_build_object(
      'max_attempts', s.opt_max_attempts, 'base_delay', s.opt_base_delay,
      'timeout', s.opt_timeout, 'start_delay', s.opt_start_delay))
    from pgflow.steps s where s.flow_slug = f.flow_slug), '{}'::jsonb) as step_options,
  to_jsonb(f) -> 'input_schema' as input_schema,
  extract(epoch from (to_jsonb(f) ->> 'retention')::interval)::bigint as retention_seconds,
  coalesce((to_jsonb(f) ->> 'priority')::int, 0) as priority
from pgflow.flows f
where f.flow_slug = %(slug)s;

-- name: status_failed_tasks
-- The failed tasks of a run, with their last attempt's error, in step then task order.
select t.step_slug, t.task_index, t.attempts_count, t.error_type, t.error_message,
  t.error_traceback
from pgflow.step_tasks t
join pgflow.step_states ss on ss.run_id = t.run_id and ss.step_slug = t.step_slug
where t.run_id = %(run_id)s::uuid and t.status = 'failed'
order by ss.step_index, t.task_index
limit %(limit)s::int;

-- name: status_failed_task_count
-- How many tasks of a run failed.
select count(*)::int as failed from pgflow.step_tasks t
where t.run_id = %(run_id)s::uuid and t.status = 'failed';

-- name: schedules_list
-- Deployed schedules (of one flow when flow_slug is given), by flow and name.
select s.flow_slug, s.name, s.cron, s.timezone, s.catch_up, s.input, s.paused, s.last_tick,
       s.created_at
from pgflow.schedules s
where %(flow_slug)s::text is null or s.flow_slug = %(flow_slug)s::text
order by s.flow_slug, s.name;

-- name: schedules_pause
-- Pause or resume a flow's schedules (or the named one); how many changed state.
select pgflow.pause_schedules(%(flow_slug)s, %(paused)s, %(name)s);

-- name: test_clock_read
-- The test clock (pgflow.testing): the time pgflow functions see, the offset, the frozen instant.
select pgflow._now() as now, c.offset_by, c.frozen_at from pgflow.test_clock c;

-- name: test_clock_advance
-- Move the test clock forward by %(seconds)s seconds, whether frozen or not.
update pgflow.test_clock c set
  offset_by = c.offset_by + make_interval(secs => %(seconds)s::float8),
  frozen_at = c.frozen_at + make_interval(secs => %(seconds)s::float8);

-- name: test_clock_advance_to
-- Move the test clock forward to %(at)s; a time already passed changes nothing.
update pgflow.test_clock c set
  offset_by = case when c.frozen_at is null
    then greatest(c.offset_by, %(at)s::timestamptz - now()) else c.offset_by end,
  frozen_at = case when c.frozen_at is not null
    then greatest(c.frozen_at, %(at)s::timestamptz) end;

-- name: test_clock_freeze
-- Stop the test clock at the time pgflow functions see now (no change when frozen already).
update pgflow.test_clock c set frozen_at = coalesce(c.frozen_at, now() + c.offset_by);

-- name: test_clock_unfreeze
-- Let the test clock run again from the instant it was frozen at.
update pgflow.test_clock c set offset_by = coalesce(c.frozen_at - now(), c.offset_by),
  frozen_at = null;

-- name: test_clock_wake
-- Wake the workers of every flow whose tasks are due, or whose leases expired, by now.
select count(pgflow._wake_workers(f.flow_slug))::int as woken from (
  select distinct t.flow_slug from pgflow.step_tasks t
  where (t.status = 'queued' and t.available_at <= pgflow._now())
     or (t.status = 'started' and t.leased_until < pgflow._now())
) as f;

-- name: test_run_wait
-- What a run waits for (pgflow.testing): busy when a task of its flows is running on this
-- worker or claimable now; otherwise next_at is when the next one becomes due (a delayed
-- task, or another worker's lease running out), NULL when nothing is left to wait for.
select r.status as run_status, pgflow._now() as now,
  exists (
    select 1 from pgflow.step_tasks t
    where t.flow_slug = any(%(flow_slugs)s::text[])
      and ((t.status = 'started' and t.worker_id = %(worker_id)s::uuid)
        or (t.status = 'queued' and t.available_at <= pgflow._now()))
  ) as busy,
  (select min(w.at) from (
    select t.available_at as at from pgflow.step_tasks t
    where t.flow_slug = any(%(flow_slugs)s::text[]) and t.status = 'queued'
    union all
    select t.leased_until from pgflow.step_tasks t
    where t.flow_slug = any(%(flow_slugs)s::text[]) and t.status = 'started'
      and t.worker_id is distinct from %(worker_id)s::uuid
  ) as w) as next_at
from pgflow.runs r where r.run_id = %(run_id)s::uuid;

-- name: test_run_tasks
-- Every task of a run (pgflow.testing), in step then task order.
select t.step_slug, t.task_index, t.status, t.attempts_count as attempts, t.input, t.output,
  t.error_message, t.error_type, t.error_traceback
from pgflow.step_tasks t
join pgflow.step_states ss on ss.run_id = t.run_id and ss.step_slug = t.step_slug
where t.run_id = %(run_id)s::uuid
order by ss.step_index, t.task_index;

-- name: telemetry_flow_exists
-- Whether a flow with this slug is deployed (pgflow events/stats --flow).
select exists (select 1 from pgflow.flows f where f.flow_slug = %(flow_slug)s::text) as found;

-- name: telemetry_run_exists
-- Whether a run with this id exists (pgflow events --run).
select exists (select 1 from pgflow.runs r where r.run_id = %(run_id)s::uuid) as found;

-- name: telemetry_now
-- The server's clock: where the next poll of pgflow events -f starts from.
select now() as now;

-- name: telemetry_sort_memory
-- For this transaction only: room to sort a busy step's durations in memory (percentiles).
select set_config('work_mem', '64MB', true);

-- name: telemetry_stats
-- Per deployed step, the tasks that finished (completed, failed or cancelled) since a moment:
-- runs, tasks by outcome, retries, duration and queue-wait percentiles. One range of the
-- index step_tasks_finished per step, read without the table. Duration: from the last
-- attempt's claim (started_at) to its result, completed and failed tasks; queue wait: from
-- the last attempt becoming claimable (available_at) to its claim. date_part of an interval
-- is double precision (extract would be numeric, several times slower to sort).
select s.flow_slug, s.step_slug, a.*
from pgflow.steps s
cross join lateral (
  select count(*) filter (where t.task_index = 0) as runs,
    count(*) as tasks,
    count(*) filter (where t.status = 'completed') as completed,
    count(*) filter (where t.status = 'failed') as failed,
    sum(greatest(t.attempts_count - t.releases - t.forgiven_attempts - 1, 0)) as retries,
    percentile_cont(array[0.5, 0.95, 0.99]) within group (
      order by date_part('epoch', coalesce(t.completed_at, t.failed_at) - t.started_at))
      filter (where t.status <> 'cancelled') as duration,
    percentile_cont(array[0.5, 0.95]) within group (
      order by date_part('epoch', t.started_at - t.available_at)) as wait
  from pgflow.step_tasks t
  where t.flow_slug = s.flow_slug and t.step_slug = s.step_slug
    and t.status in ('completed', 'failed', 'cancelled')
    and case t.status when 'completed' then t.completed_at when 'failed' then t.failed_at
      else t.cancelled_at end
      >= coalesce(%(since_at)s::timestamptz, now() - %(since_ago)s::interval)
) as a
where (%(flow_slug)s::text is null or s.flow_slug = %(flow_slug)s::text) and a.tasks > 0
order by s.flow_slug, s.step_index;

-- name: telemetry_events
-- Lifecycle events derived from the stored timestamps, at or after a moment: the newest
-- `limit`, newest first. Runs are found through indexes only: started since (runs_by_started),
-- with a task finished since (step_tasks_finished, one range per deployed step), leased since
-- (step_tasks_leased: a lease ends after its claim) or waiting for a retry due since
-- (step_tasks_waiting); or the one run asked for. Their rows come by primary key. Each
-- `offset 0` keeps a lateral subquery a per-row lookup, whatever the statistics say. Events
-- of one transaction share a timestamp; `ord` orders them as they followed from each other:
-- run started, task retried, task finished, step finished, step started, task started, run
-- finished.
with touched as (
  select %(run_id)s::uuid as run_id where %(run_id)s::uuid is not null
  union
  select r.run_id from pgflow.runs r
  where %(run_id)s::uuid is null and r.started_at >= coalesce(%(since_at)s::timestamptz, now() - %(since_ago)s::interval)
  union
  select t.run_id from pgflow.steps s
  cross join lateral (
    select t.run_id from pgflow.step_tasks t
    where t.flow_slug = s.flow_slug and t.step_slug = s.step_slug
      and t.status in ('completed', 'failed', 'cancelled')
      and case t.status when 'completed' then t.completed_at when 'failed' then t.failed_at
        else t.cancelled_at end >= coalesce(%(since_at)s::timestamptz, now() - %(since_ago)s::interval)
    offset 0
  ) as t
  where %(run_id)s::uuid is null
  union
  select t.run_id from pgflow.step_tasks t
  where %(run_id)s::uuid is null and t.leased_until is not null
    and t.leased_until >= coalesce(%(since_at)s::timestamptz, now() - %(since_ago)s::interval)
  union
  select t.run_id from pgflow.step_tasks t
  where %(run_id)s::uuid is null and t.status = 'queued' and t.priority_at is null
    and t.available_at >= coalesce(%(since_at)s::timestamptz, now() - %(since_ago)s::interval)
),
runs as materialized (
  select r.* from touched x
  cross join lateral (select * from pgflow.runs r where r.run_id = x.run_id offset 0) as r
  where %(flow_slug)s::text is null or r.flow_slug = %(flow_slug)s::text
),
events as (
  select e.ts, e.ord, 'run:' || e.status as event, r.run_id, r.flow_slug,
    null::text as step_slug, null::int as task_index, null::int as attempt,
    null::uuid as worker_id, null::float8 as duration_ms, null::text as error_type,
    case when e.status = 'failed' then r.error_message end as error, null::text as reason
  from runs r
  cross join lateral (values (r.started_at, 'started', 0), (r.completed_at, 'completed', 6),
    (r.failed_at, 'failed', 6), (r.cancelled_at, 'cancelled', 6)) as e(ts, status, ord)
  union all
  select e.ts, e.ord, 'step:' || e.status, s.run_id, s.flow_slug, s.step_slug, null, null,
    null, null, null, case when e.status = 'failed' then s.error_message end,
    case when e.status = 'skipped' then s.skip_reason end
  from runs r
  cross join lateral (
    select * from pgflow.step_states s where s.run_id = r.run_id offset 0) as s
  cross join lateral (values (s.started_at, 'started', 4), (s.completed_at, 'completed', 3),
    (s.failed_at, 'failed', 3), (s.skipped_at, 'skipped', 3),
    (s.cancelled_at, 'cancelled', 3)) as e(ts, status, ord)
  union all
  select e.ts, e.ord, 'task:' || e.status, t.run_id, t.flow_slug, t.step_slug, t.task_index,
    e.attempt, case when e.status in ('started', 'completed', 'failed') then t.worker_id end,
    case when e.status in ('completed', 'failed')
      then date_part('epoch', e.ts - t.started_at) * 1000 end,
    case when e.status in ('failed', 'retried') then t.error_type end,
    case when e.status in ('failed', 'retried') then t.error_message end, null
  from runs r
  cross join lateral (select * from pgflow.step_tasks t where t.run_id = r.run_id offset 0) as t
  cross join lateral (values (t.started_at, 'started', 5, t.attempts_count),
    (t.completed_at, 'completed', 2, t.attempts_count),
    (case when t.status = 'failed' then t.failed_at end, 'failed', 2, t.attempts_count),
    (case when t.status <> 'failed' then t.failed_at end, 'retried', 1,
      t.attempts_count - case when t.status = 'queued' then 0 else 1 end),
    (t.cancelled_at, 'cancelled', 2, t.attempts_count)) as e(ts, status, ord, attempt)
)
select ev.* from events ev
where ev.ts >= coalesce(%(since_at)s::timestamptz, now() - %(since_ago)s::interval)
order by ev.ts desc, ev.ord desc, ev.run_id desc, ev.step_slug desc nulls last,
  ev.task_index desc nulls last
limit %(limit)s::int;

-- name: telemetry_workers
-- Registered workers with their heartbeat age and tasks in flight (leases they hold, walking
-- step_tasks_leased): those not stopped whose heartbeat is within `seen_within`, or all.
select w.worker_id, w.hostname, w.pid, w.flow_slugs, w.started_at, w.last_heartbeat_at,
  w.stopped_at, date_part('epoch', now() - w.last_heartbeat_at) as heartbeat_age,
  coalesce(l.in_flight, 0) as in_flight
from pgflow.workers w
left join (
  select t.worker_id, count(*) as in_flight from pgflow.step_tasks t
  where t.leased_until is not null group by t.worker_id
) as l on l.worker_id = w.worker_id
where %(all)s::boolean
  or (w.stopped_at is null and w.last_heartbeat_at >= now() - %(seen_within)s::interval)
order by w.stopped_at is not null, w.last_heartbeat_at < now() - %(live_within)s::interval,
  w.started_at;

-- name: telemetry_flow_liveness
-- Per flow slug: how many workers serving it are live (not stopped, heartbeat within
-- `live_within`), and the last heartbeat of any worker that served it.
select f.slug as flow_slug,
  count(w.worker_id) filter (where w.stopped_at is null
    and w.last_heartbeat_at >= now() - %(live_within)s::interval) as live,
  max(w.last_heartbeat_at) as last_seen
from unnest(%(flow_slugs)s::text[]) as f(slug)
left join pgflow.workers w on f.slug = any(w.flow_slugs)
group by f.slug;

-- name: value_limits
-- The owner's limits on values: larger ones are stored by reference, none may be over max.
select inline_limit_bytes, max_payload_bytes from pgflow.value_limits();

-- name: blob_put_chunk
-- Write one chunk of a value being stored in the 'pg' store (bytes sent in binary).
select pgflow.put_blob_chunk(%(run_id)s::uuid, %(blob_id)s::uuid, %(seq)s::int, %(data)b::bytea);

-- name: blob_seal
-- Seal a stored value of a run (its chunks written, or its bytes in an external store).
select pgflow.seal_blob(%(run_id)s::uuid, %(blob_id)s::uuid, %(size)s::bigint,
  %(sha256)s::text, %(store)s::text)::text as ref;

-- name: blob_read
-- Up to max_chunks chunks of a stored value of the 'pg' store, from chunk from_seq on.
select seq, data
from pgflow.read_blob(%(run_id)s::uuid, %(blob_id)s::uuid, %(from_seq)s::int, %(max_chunks)s::int);

-- name: blob_tombstones
-- Values of an external store whose runs were deleted: their files go next.
select run_id, blob_id from pgflow.blob_tombstones(%(store)s::text, %(max_rows)s::int);

-- name: blob_forget_tombstones
-- The external values whose files were deleted.
select pgflow.forget_blob_tombstones(%(store)s::text, %(run_ids)s::uuid[], %(blob_ids)s::uuid[]);

-- name: worker_task_flow_input
-- The run input of a task, for the attempt holding its lease (map tasks are claimed without it).
select pgflow.task_flow_input(%(run_id)s::uuid, %(step_slug)s::text, %(task_index)s::int,
  %(attempt)s::int) as input;

-- name: proxy_detect
-- Whether this database is a pgflow proxy (docs/sharding.md) and whether it has a shard's schema.
select to_regclass('pgflow_proxy.shards') is not null as proxy,
  to_regclass('pgflow.schema_migrations') is not null as pgflow;

-- name: proxy_shards
-- A proxy's shards in routing order, as the proxy's server connects to them (no password).
select shard, conninfo from pgflow_proxy.shards order by shard;

-- name: proxy_state
-- A proxy's configuration: shard count, PL/Proxy partitions, shards' schema version, its version.
select shard_count, partitions, schema_version, proxy_version from pgflow_proxy.state;

-- name: proxy_plproxy_available
-- Whether the PL/Proxy extension can be created on this server.
select exists (select 1 from pg_catalog.pg_available_extensions e where e.name = 'plproxy')
  as available;

-- name: proxy_install_lock
-- Serialise proxy installers (transaction-scoped).
select pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('pgflow.proxy.install'));

-- name: proxy_configure
-- Point the proxy at its shards; returns the PL/Proxy partition count.
select pgflow_proxy.configure(%(conninfos)s::text[], %(password)s::text,
  %(schema_version)s::int, %(proxy_version)s::int) as partitions;

-- name: proxy_broadcast_functions
-- The pgflow functions the proxy runs on every shard.
select pgflow_proxy.broadcast_functions() as names;

-- name: shard_function_signatures
-- A shard's parameter lists of the named pgflow functions, for the proxy's mirrors.
select p.proname as name, pg_catalog.pg_get_function_arguments(p.oid) as arguments,
  p.pronargs as arity
from pg_catalog.pg_proc p
where p.pronamespace = 'pgflow'::regnamespace and p.proname = any(%(names)s::text[])
order by p.proname, p.oid;

-- name: proxy_mirror_functions
-- Define the proxy's RUN ON ALL mirrors of those functions; returns how many.
select pgflow_proxy.mirror_functions(%(functions)s::jsonb) as mirrored;

-- name: proxy_shard_status
-- Each shard as the proxy's server sees it: reachable, schema version, error.
select shard, conninfo, reachable, schema_version, error from pgflow_proxy.shard_status();

-- name: client_list_runs_proxied
-- Recent runs of every shard through a pgflow proxy, newest first (see client_list_runs).
select run_id, flow_slug, status, input, output, error_message, started_at, completed_at,
  failed_at, cancelled_at, finished_at
from pgflow.list_runs(%(flow_slug)s::text, %(status)s::text, %(limit)s::int,
  %(since_at)s::timestamptz, %(since_ago)s::interval);

-- name: status_failed_tasks_proxied
-- The failed tasks of a run through a pgflow proxy (see status_failed_tasks).
select step_slug, task_index, attempts_count, error_type, error_message, error_traceback
from pgflow.failed_tasks(%(run_id)s::uuid, %(limit)s::int);

-- name: status_failed_task_count_proxied
-- How many tasks of a run failed, through a pgflow proxy.
select pgflow.failed_task_count(%(run_id)s::uuid) as failed;
