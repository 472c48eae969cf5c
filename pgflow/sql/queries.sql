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

-- name: doctor_can_inspect
-- Whether this role may read pgflow's definitions (true before pgflow is installed).
select to_regclass('pgflow.schema_migrations') is null
    or has_table_privilege('pgflow.schema_migrations', 'select') as can_inspect;

-- name: deploy_delete_flow
-- Development re-create: count the flow's runs, then delete the flow and all its data.
select (select count(*) from pgflow.runs r where r.flow_slug = %(slug)s)::int as runs_deleted,
       pgflow.delete_flow_and_data(%(slug)s) is null as deleted;

-- name: deploy_options
-- The runtime options (tunables) of a flow and its steps, one row per option.
select 'flow.' || o.key as name, o.value
from pgflow.flows f,
  jsonb_each(jsonb_build_object('max_attempts', f.opt_max_attempts,
    'base_delay', f.opt_base_delay, 'timeout', f.opt_timeout)) o
where f.flow_slug = %(slug)s
union all
select s.step_slug || '.' || o.key, o.value
from pgflow.steps s,
  jsonb_each(jsonb_build_object('max_attempts', s.opt_max_attempts,
    'base_delay', s.opt_base_delay, 'timeout', s.opt_timeout,
    'start_delay', s.opt_start_delay)) o
where s.flow_slug = %(slug)s;

-- name: worker_claim_tasks
-- Lease up to max_tasks ready tasks of the worker's flows, with their built inputs.
select run_id, flow_slug, step_slug, task_index, attempt, input, flow_input, deadline
from pgflow.claim_tasks(%(flow_slugs)s::text[], %(worker_id)s::uuid, %(max_tasks)s::int);

-- name: worker_complete_tasks
-- Report finished tasks in one transaction (parallel arrays, fenced by attempt).
select count(*)::int as reported
from pgflow.complete_tasks(%(run_ids)s::uuid[], %(step_slugs)s::text[],
  %(task_indexes)s::int[], %(outputs)s::jsonb[], %(attempts)s::int[]);

-- name: worker_fail_tasks
-- Report failed attempts in one transaction (parallel arrays, fenced by attempt).
select count(*)::int as reported
from pgflow.fail_tasks(%(run_ids)s::uuid[], %(step_slugs)s::text[],
  %(task_indexes)s::int[], %(error_messages)s::text[], %(attempts)s::int[],
  %(error_types)s::text[], %(error_tracebacks)s::text[]);

-- name: worker_release_tasks
-- Graceful shutdown: give back the tasks this worker still holds (attempt not counted).
select pgflow.release_tasks(%(worker_id)s::uuid) as released;

-- name: worker_register
-- Announce the worker (upsert) with the flows it serves.
select worker_id from pgflow.register_worker(%(worker_id)s::uuid, %(flow_slugs)s::text[],
  %(hostname)s::text, %(pid)s::int);

-- name: worker_heartbeat
-- The worker is alive; false when its row is gone (it then registers again).
select pgflow.heartbeat(%(worker_id)s::uuid) as known;

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

-- name: client_start_flow
-- Start a run (idempotent when run_id is given and exists).
select run_id, flow_slug, status, input, output, error_message, started_at, completed_at,
  failed_at, cancelled_at, finished_at
from pgflow.start_flow(%(flow_slug)s::text, %(input)s::jsonb, %(run_id)s::uuid);

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

-- name: client_cancel_run
-- Cancel a live run and everything it has in flight (no-op on a finished run).
select run_id from pgflow.cancel_run(%(run_id)s::uuid);

-- name: client_list_runs
-- Recent runs, newest first, optionally of one flow and/or in one status.
select run_id, flow_slug, status, input, output, error_message, started_at, completed_at,
  failed_at, cancelled_at, finished_at
from pgflow.runs
where (%(flow_slug)s::text is null or flow_slug = %(flow_slug)s::text)
  and (%(status)s::text is null or status = %(status)s::text)
order by started_at desc, run_id
limit %(limit)s::int;
