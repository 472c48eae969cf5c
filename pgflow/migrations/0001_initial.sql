-- 0001_initial: the pgflow schema, generated from pgflow/sql/schema/*.sql in file order.
-- Do not edit by hand. Before the first release, change pgflow/sql/schema/ and re-run
-- scripts/build-initial-migration; after a release, add a new migration instead.

-- ---- pgflow/sql/schema/0010_schema.sql ----
-- The pgflow schema: every table and function of the engine lives here.
-- No extension is required (gen_random_uuid and sha256 are built in since PostgreSQL 13/11).
create schema if not exists pgflow;

-- ---- pgflow/sql/schema/0020_function_is_valid_slug.sql ----
-- is_valid_slug(slug): the slug rules shared by flows and steps, mirrored by the Python DSL.
-- A slug starts with a letter or underscore, continues with letters, digits or underscores,
-- is at most 128 characters long, and is not one of the reserved words `run` and `input`
-- (they name the run itself and the flow input in handler bindings).
-- NULL is not a valid slug. Immutable, so it can back check constraints.
create or replace function pgflow.is_valid_slug(slug text)
returns boolean
language sql
immutable
set search_path = ''
as $$
  select slug is not null
    and length(slug) between 1 and 128
    and slug ~ '^[a-zA-Z_][a-zA-Z0-9_]*$'
    and slug not in ('run', 'input');
$$;

-- ---- pgflow/sql/schema/0030_tables_definition.sql ----
-- Definition tables: flows, steps, deps. Written only by create_flow / add_step and
-- delete_flow_and_data; read on every claim (small, always cached).
--
-- flows.status is 'defining' while a flow declared with a shape (compiled SQL) has not yet
-- received all of its add_step calls; start_flow refuses such a flow. Flows defined without a
-- shape (pgflow-style SQL) are 'ready' at once and grow step by step.
-- flows.checksum is the checksum of the declared shape (NULL when none was declared).
create table if not exists pgflow.flows (
  flow_slug text primary key check (pgflow.is_valid_slug(flow_slug)),
  opt_max_attempts int not null default 3 check (opt_max_attempts >= 1),
  opt_base_delay int not null default 1 check (opt_base_delay >= 0),
  opt_timeout int not null default 60 check (opt_timeout >= 1),
  status text not null default 'ready' check (status in ('defining', 'ready')),
  declared_shape jsonb,
  checksum text,
  created_at timestamptz not null default now()
);

-- Step options left NULL inherit the flow's (max_attempts, base_delay, timeout).
create table if not exists pgflow.steps (
  flow_slug text not null references pgflow.flows (flow_slug) on delete cascade,
  step_slug text not null check (pgflow.is_valid_slug(step_slug)),
  step_index int not null,
  step_type text not null default 'single' check (step_type in ('single', 'map')),
  deps_count int not null default 0 check (deps_count >= 0),
  opt_max_attempts int check (opt_max_attempts >= 1),
  opt_base_delay int check (opt_base_delay >= 0),
  opt_timeout int check (opt_timeout >= 1),
  opt_start_delay int check (opt_start_delay >= 0),
  required_input_pattern jsonb check (
    required_input_pattern is null or jsonb_typeof(required_input_pattern) = 'object'
  ),
  forbidden_input_pattern jsonb check (
    forbidden_input_pattern is null or jsonb_typeof(forbidden_input_pattern) = 'object'
  ),
  when_unmet text not null default 'skip'
    check (when_unmet in ('skip', 'skip-cascade', 'fail')),
  when_exhausted text not null default 'fail'
    check (when_exhausted in ('skip', 'skip-cascade', 'fail')),
  created_at timestamptz not null default now(),
  primary key (flow_slug, step_slug),
  unique (flow_slug, step_index),
  check (step_type <> 'map' or deps_count <= 1)
);

-- deps: step_slug depends on dep_slug.
create table if not exists pgflow.deps (
  flow_slug text not null,
  dep_slug text not null,
  step_slug text not null,
  created_at timestamptz not null default now(),
  primary key (flow_slug, step_slug, dep_slug),
  foreign key (flow_slug, dep_slug)
    references pgflow.steps (flow_slug, step_slug) on delete cascade,
  foreign key (flow_slug, step_slug)
    references pgflow.steps (flow_slug, step_slug) on delete cascade,
  check (dep_slug <> step_slug)
);

create index if not exists deps_dependents on pgflow.deps (flow_slug, dep_slug);

-- ---- pgflow/sql/schema/0040_tables_runtime.sql ----
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
set search_path = ''
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
  started_at timestamptz not null default now(),
  completed_at timestamptz,
  failed_at timestamptz,
  cancelled_at timestamptz,
  finished_at timestamptz,
  check ((status = 'started') = (finished_at is null))
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
  created_at timestamptz not null default now(),
  started_at timestamptz,
  completed_at timestamptz,
  failed_at timestamptz,
  skipped_at timestamptz,
  cancelled_at timestamptz,
  primary key (run_id, step_slug)
) with (fillfactor = 80);

-- One row per task; the row itself is the queue entry (no separate message table).
-- A task is claimable when status = 'queued' and available_at <= now(). Claims take tasks
-- in priority_at order: available_at plus one millisecond per task_index, so a large map
-- interleaves with work that arrives after it instead of blocking it.
-- input holds the element of a map task (copied once when the map starts); other tasks get
-- their input built at claim time from the run input or the dependencies' outputs.
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
  queued_at timestamptz not null default now(),
  available_at timestamptz not null default now(),
  priority_at timestamptz not null default now(),
  started_at timestamptz,
  leased_until timestamptz,
  completed_at timestamptz,
  failed_at timestamptz,
  cancelled_at timestamptz,
  primary key (run_id, step_slug, task_index),
  check ((status = 'started') = (leased_until is not null))
);

create index if not exists step_tasks_ready on pgflow.step_tasks (flow_slug, priority_at)
  where status = 'queued';
-- The predicate is `leased_until is not null` (equivalent to status = 'started' by the check
-- constraint), not `status = 'started'`: a completion's `where <primary key> and status =
-- 'started'` must never be planned as a walk of this index instead of a primary-key lookup.
-- `leased_until < now()` (lease expiry) still implies it, so expiry uses the index.
create index if not exists step_tasks_leased on pgflow.step_tasks (leased_until)
  where leased_until is not null;

-- Workers announce themselves and heartbeat; claiming does not require registration.
create table if not exists pgflow.workers (
  worker_id uuid primary key,
  flow_slugs text[] not null default '{}',
  hostname text,
  pid int,
  started_at timestamptz not null default now(),
  last_heartbeat_at timestamptz not null default now(),
  stopped_at timestamptz
);

-- What claim_tasks returns for each task.
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
      deadline timestamptz
    );
  end if;
end
$$;

-- ---- pgflow/sql/schema/0100_function_shape.sql ----
-- Shapes and checksums.
--
-- A flow's shape is its identity: slug, steps in definition order, step types, sorted
-- dependencies, condition patterns and the when_unmet / when_exhausted modes. Runtime
-- options are tunables and stay out of it. The checksum is the hex SHA-256 of the shape's
-- jsonb text; the Python compiler renders the same text offline (pgflow.shape).

-- _step_shape(...): the shape object of one step, built from its parts.
create or replace function pgflow._step_shape(
  step_slug text,
  step_type text,
  deps text[],
  required_input_pattern jsonb,
  forbidden_input_pattern jsonb,
  when_unmet text,
  when_exhausted text
)
returns jsonb
language sql
immutable
set search_path = ''
as $$
  select jsonb_build_object(
    'step_slug', step_slug,
    'step_type', step_type,
    'deps', coalesce(
      (select jsonb_agg(d order by d collate "C") from unnest(deps) as d), '[]'::jsonb
    ),
    'required_input_pattern', required_input_pattern,
    'forbidden_input_pattern', forbidden_input_pattern,
    'when_unmet', when_unmet,
    'when_exhausted', when_exhausted
  );
$$;

-- get_flow_shape(flow_slug): the shape of a defined flow, from the definition tables.
-- Raises PGF02 for an unknown slug.
create or replace function pgflow.get_flow_shape(flow_slug text)
returns jsonb
language plpgsql
stable
security definer
set search_path = ''
as $$
declare
  result jsonb;
begin
  if not exists (select 1 from pgflow.flows f where f.flow_slug = get_flow_shape.flow_slug) then
    raise exception using
      errcode = 'PGF02',
      message = format('unknown flow %L', get_flow_shape.flow_slug),
      hint = 'Deploy the flow first (pgflow deploy FLOWS, or apply its compiled SQL).';
  end if;
  select jsonb_build_object(
    'version', 1,
    'flow_slug', get_flow_shape.flow_slug,
    'steps', coalesce(jsonb_agg(
      pgflow._step_shape(
        s.step_slug, s.step_type,
        array(
          select d.dep_slug from pgflow.deps d
          where d.flow_slug = s.flow_slug and d.step_slug = s.step_slug
        ),
        s.required_input_pattern, s.forbidden_input_pattern, s.when_unmet, s.when_exhausted
      ) order by s.step_index), '[]'::jsonb)
  )
  into result
  from pgflow.steps s
  where s.flow_slug = get_flow_shape.flow_slug;
  return result;
end;
$$;

-- shape_checksum(shape): hex SHA-256 of the shape's canonical (jsonb) text.
create or replace function pgflow.shape_checksum(shape jsonb)
returns text
language sql
immutable
set search_path = ''
as $$
  select encode(sha256(convert_to(shape::text, 'UTF8')), 'hex');
$$;

-- flow_checksum(flow_slug): checksum of the flow as defined in the tables right now.
create or replace function pgflow.flow_checksum(flow_slug text)
returns text
language sql
stable
security definer
set search_path = ''
as $$
  select pgflow.shape_checksum(pgflow.get_flow_shape(flow_slug));
$$;

-- _shape_difference(old, new): a readable sentence naming the first difference between two
-- shapes, or NULL when they are equal.
create or replace function pgflow._shape_difference(old_shape jsonb, new_shape jsonb)
returns text
language plpgsql
immutable
set search_path = ''
as $$
declare
  old_steps jsonb := coalesce(old_shape -> 'steps', '[]'::jsonb);
  new_steps jsonb := coalesce(new_shape -> 'steps', '[]'::jsonb);
  n int := greatest(jsonb_array_length(old_steps), jsonb_array_length(new_steps));
  o jsonb;
  w jsonb;
  k text;
begin
  if old_shape = new_shape then
    return null;
  end if;
  for i in 0 .. n - 1 loop
    o := old_steps -> i;
    w := new_steps -> i;
    if o is null then
      return format('step %s (%s) is new: the deployed flow has %s steps',
        i + 1, w ->> 'step_slug', jsonb_array_length(old_steps));
    elsif w is null then
      return format('step %s (%s) is missing: the new definition has %s steps',
        i + 1, o ->> 'step_slug', jsonb_array_length(new_steps));
    elsif o ->> 'step_slug' is distinct from w ->> 'step_slug' then
      return format('step %s is %L in the database but %L in the new definition',
        i + 1, o ->> 'step_slug', w ->> 'step_slug');
    end if;
    foreach k in array array[
      'step_type', 'deps', 'required_input_pattern', 'forbidden_input_pattern',
      'when_unmet', 'when_exhausted'
    ] loop
      if (o -> k) is distinct from (w -> k) then
        return format('step %L: %s is %s in the database but %s in the new definition',
          o ->> 'step_slug', k, coalesce((o -> k)::text, 'null'), coalesce((w -> k)::text, 'null'));
      end if;
    end loop;
  end loop;
  return 'the flow slugs or shape versions differ';
end;
$$;

-- ---- pgflow/sql/schema/0110_function_raise.sql ----
-- _raise(errcode, message, hint): raise a pgflow error. Used by every function so that
-- errors carry their own SQLSTATE (PGF01..PGF10, mapped to Python classes) and a hint.
create or replace function pgflow._raise(code text, message text, hint text default null)
returns void
language plpgsql
immutable
set search_path = ''
as $$
begin
  raise exception using errcode = code, message = message, hint = coalesce(hint, '');
end;
$$;

-- _check_option(where_, name, value, minimum): refuse an option below its minimum.
create or replace function pgflow._check_option(where_ text, name text, value int, minimum int)
returns void
language plpgsql
immutable
set search_path = ''
as $$
begin
  if value is not null and value < minimum then
    perform pgflow._raise('PGF03',
      format('%s: option %s must be >= %s, got %s', where_, name, minimum, value),
      format('Set %s to an integer >= %s.', name, minimum));
  end if;
end;
$$;

-- _check_slug(kind, slug): refuse an invalid slug with a message naming it.
create or replace function pgflow._check_slug(kind text, slug text)
returns void
language plpgsql
immutable
set search_path = ''
as $$
begin
  if not pgflow.is_valid_slug(slug) then
    perform pgflow._raise('PGF01',
      format('invalid %s slug %L', kind, slug),
      'A slug starts with a letter or _, continues with letters, digits or _, has at most '
      || '128 characters and is not "run" or "input".');
  end if;
end;
$$;

-- _max_payload_bytes(): the largest run input or task output accepted, in bytes (stored
-- size). Default 16 MiB; change it per database or role with
-- `alter database mydb set pgflow.max_payload_bytes = '67108864'`.
create or replace function pgflow._max_payload_bytes()
returns bigint
language plpgsql
stable
set search_path = ''
as $$
begin
  return coalesce(nullif(current_setting('pgflow.max_payload_bytes', true), '')::bigint,
    16777216);
end;
$$;

-- ---- pgflow/sql/schema/0120_function_create_flow.sql ----
-- create_flow(flow_slug, max_attempts, base_delay, timeout, shape, checksum)
--
-- Parameters and defaults follow TypeScript pgflow; `shape` and `checksum` are optional
-- extras emitted by pgflow-py's compiler.
-- * New slug: inserts the flow. With a shape that has steps it stays 'defining' until
--   add_step has produced exactly that shape (so SQL applied statement by statement never
--   leaves a usable half-defined flow).
-- * Existing slug, no shape: updates the runtime options (pgflow-compatible re-apply).
-- * Existing slug, same shape: updates the runtime options (a NOTICE names each change).
-- * Existing slug, different shape: raises PGF04 before changing anything, naming both
--   checksums and the first difference.
-- NULL options mean the defaults (3 attempts, 1 s base delay, 60 s timeout).
-- Locks the flow row, so concurrent deployers of one slug serialise.
create or replace function pgflow.create_flow(
  flow_slug text,
  max_attempts int default null,
  base_delay int default null,
  timeout int default null,
  shape jsonb default null,
  checksum text default null
)
returns pgflow.flows
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  slug text := create_flow.flow_slug;
  new_checksum text;
  existing pgflow.flows;
  existing_checksum text;
  result pgflow.flows;
begin
  perform pgflow._check_slug('flow', slug);
  perform pgflow._check_option(format('flow %L', slug), 'max_attempts', max_attempts, 1);
  perform pgflow._check_option(format('flow %L', slug), 'base_delay', base_delay, 0);
  perform pgflow._check_option(format('flow %L', slug), 'timeout', timeout, 1);
  if shape is not null then
    new_checksum := pgflow._check_declared_shape(slug, shape, create_flow.checksum);
  end if;

  perform pg_advisory_xact_lock(pg_catalog.hashtext('pgflow.flow:' || slug));
  select * into existing from pgflow.flows f where f.flow_slug = slug for update;
  if not found then
    insert into pgflow.flows as f (
      flow_slug, opt_max_attempts, opt_base_delay, opt_timeout, status, declared_shape, checksum
    ) values (
      slug, coalesce(max_attempts, 3), coalesce(base_delay, 1), coalesce(timeout, 60),
      case when jsonb_array_length(coalesce(shape -> 'steps', '[]')) > 0
        then 'defining' else 'ready' end,
      shape, new_checksum
    ) returning * into result;
    return result;
  end if;

  if shape is not null then
    existing_checksum := coalesce(existing.checksum, pgflow.flow_checksum(slug));
    if existing_checksum <> new_checksum then
      perform pgflow._raise('PGF04',
        format('flow %L already exists with a different shape (deployed checksum %s, new '
          || 'checksum %s): %s', slug, existing_checksum, new_checksum,
          pgflow._shape_difference(
            coalesce(existing.declared_shape, pgflow.get_flow_shape(slug)), shape)),
        format('Flows are immutable. Deploy the new shape under a new slug such as %L, or '
          || 'in development recreate it with `pgflow deploy --dev` (deletes its runs).',
          slug || '_v2'));
    end if;
  end if;
  return pgflow._update_flow_options(existing, max_attempts, base_delay, timeout);
end;
$$;

-- _check_declared_shape(slug, shape, checksum): validate a declared shape and return its
-- checksum. A declared checksum that differs from the shape's means the SQL was edited by
-- hand or produced by a faulty generator (PGF09).
create or replace function pgflow._check_declared_shape(slug text, shape jsonb, checksum text)
returns text
language plpgsql
immutable
set search_path = ''
as $$
declare
  computed text := pgflow.shape_checksum(shape);
begin
  if jsonb_typeof(shape) <> 'object' or jsonb_typeof(shape -> 'steps') <> 'array'
     or shape ->> 'flow_slug' is distinct from slug or shape -> 'version' <> '1' then
    perform pgflow._raise('PGF05',
      format('flow %L: the declared shape is not a version-1 shape of this flow', slug),
      'Regenerate the SQL with `pgflow compile`.');
  end if;
  if checksum is not null and checksum <> computed then
    perform pgflow._raise('PGF09',
      format('flow %L: declared checksum %s does not match the declared shape (checksum %s)',
        slug, checksum, computed),
      'The compiled SQL was edited or generated by an incompatible version; '
      || 'regenerate it with `pgflow compile`.');
  end if;
  return computed;
end;
$$;

-- _update_flow_options(flow, ...): apply changed runtime options, announcing each change.
create or replace function pgflow._update_flow_options(
  existing pgflow.flows, max_attempts int, base_delay int, timeout int
)
returns pgflow.flows
language plpgsql
volatile
set search_path = ''
as $$
declare
  result pgflow.flows;
begin
  update pgflow.flows f set
    opt_max_attempts = coalesce(max_attempts, 3),
    opt_base_delay = coalesce(base_delay, 1),
    opt_timeout = coalesce(timeout, 60)
  where f.flow_slug = existing.flow_slug
  returning * into result;
  if (existing.opt_max_attempts, existing.opt_base_delay, existing.opt_timeout)
     is distinct from (result.opt_max_attempts, result.opt_base_delay, result.opt_timeout) then
    raise notice 'flow %: options updated (max_attempts % -> %, base_delay % -> %, timeout % -> %)',
      quote_literal(existing.flow_slug),
      existing.opt_max_attempts, result.opt_max_attempts,
      existing.opt_base_delay, result.opt_base_delay,
      existing.opt_timeout, result.opt_timeout;
  end if;
  return result;
end;
$$;

-- ---- pgflow/sql/schema/0130_function_add_step.sql ----
-- add_step(flow_slug, step_slug, deps_slugs, max_attempts, base_delay, timeout, start_delay,
--          step_type, required_input_pattern, forbidden_input_pattern, when_unmet,
--          when_exhausted)
--
-- Parameter names and meanings follow TypeScript pgflow. NULL options inherit the flow's.
-- * A step that already exists with the same definition: its runtime options are updated
--   (re-applying compiled SQL is a no-op for the shape).
-- * A step that exists with a different definition: PGF04, nothing changes.
-- * A flow declared with a shape: the step must equal the declared step at its position;
--   when the last declared step arrives the flow becomes 'ready'.
-- Validation errors: PGF01 invalid slug, PGF02 unknown flow, PGF03 unknown dependency or bad
-- option, PGF05 invalid definition (map with several deps, bad mode, pattern not an object).
create or replace function pgflow.add_step(
  flow_slug text,
  step_slug text,
  deps_slugs text[] default '{}',
  max_attempts int default null,
  base_delay int default null,
  timeout int default null,
  start_delay int default null,
  step_type text default 'single',
  required_input_pattern jsonb default null,
  forbidden_input_pattern jsonb default null,
  when_unmet text default 'skip',
  when_exhausted text default 'fail'
)
returns pgflow.steps
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  flow pgflow.flows;
  deps text[] := coalesce(deps_slugs, '{}');
  where_ text := format('step %L of flow %L', add_step.step_slug, add_step.flow_slug);
  new_shape jsonb;
  step_count int;
  result pgflow.steps;
begin
  select * into flow from pgflow.flows f where f.flow_slug = add_step.flow_slug for update;
  if not found then
    perform pgflow._raise('PGF02', format('unknown flow %L (adding step %L)',
      add_step.flow_slug, add_step.step_slug), 'Call pgflow.create_flow first.');
  end if;
  perform pgflow._check_slug('step', add_step.step_slug);
  perform pgflow._validate_step(where_, add_step.flow_slug, add_step.step_slug, deps,
    coalesce(step_type, 'single'), required_input_pattern, forbidden_input_pattern,
    coalesce(when_unmet, 'skip'), coalesce(when_exhausted, 'fail'));
  perform pgflow._check_option(where_, 'max_attempts', max_attempts, 1);
  perform pgflow._check_option(where_, 'base_delay', base_delay, 0);
  perform pgflow._check_option(where_, 'timeout', timeout, 1);
  perform pgflow._check_option(where_, 'start_delay', start_delay, 0);

  new_shape := pgflow._step_shape(add_step.step_slug, coalesce(step_type, 'single'), deps,
    required_input_pattern, forbidden_input_pattern,
    coalesce(when_unmet, 'skip'), coalesce(when_exhausted, 'fail'));
  if exists (select 1 from pgflow.steps s
             where s.flow_slug = add_step.flow_slug and s.step_slug = add_step.step_slug) then
    perform pgflow._check_same_step(flow, where_, new_shape);
  else
    select count(*) into step_count from pgflow.steps s where s.flow_slug = add_step.flow_slug;
    perform pgflow._check_declared_step(flow, where_, new_shape, step_count);
    insert into pgflow.steps (flow_slug, step_slug, step_index, step_type, deps_count,
      required_input_pattern, forbidden_input_pattern, when_unmet, when_exhausted)
    values (add_step.flow_slug, add_step.step_slug, step_count, coalesce(step_type, 'single'),
      cardinality(deps), required_input_pattern, forbidden_input_pattern,
      coalesce(when_unmet, 'skip'), coalesce(when_exhausted, 'fail'));
    insert into pgflow.deps (flow_slug, dep_slug, step_slug)
    select add_step.flow_slug, d, add_step.step_slug from unnest(deps) as d;
    if flow.status = 'defining'
       and step_count + 1 = jsonb_array_length(flow.declared_shape -> 'steps') then
      update pgflow.flows f set status = 'ready' where f.flow_slug = add_step.flow_slug;
    end if;
  end if;

  update pgflow.steps s set
    opt_max_attempts = max_attempts, opt_base_delay = base_delay,
    opt_timeout = timeout, opt_start_delay = start_delay
  where s.flow_slug = add_step.flow_slug and s.step_slug = add_step.step_slug
  returning * into result;
  return result;
end;
$$;

-- _validate_step(...): the definition rules that do not depend on existing steps' shape.
create or replace function pgflow._validate_step(
  where_ text, flow_slug text, step_slug text, deps text[], step_type text,
  required_input_pattern jsonb, forbidden_input_pattern jsonb,
  when_unmet text, when_exhausted text
)
returns void
language plpgsql
stable
set search_path = ''
as $$
declare
  missing text;
begin
  if step_type not in ('single', 'map') then
    perform pgflow._raise('PGF05', format('%s: unknown step_type %L', where_, step_type),
      'Use step_type ''single'' or ''map''.');
  end if;
  if step_type = 'map' and cardinality(deps) > 1 then
    perform pgflow._raise('PGF05',
      format('%s: a map step can have at most one dependency, got %s', where_, cardinality(deps)),
      'Map over the output of a single step; add a step that combines the others first.');
  end if;
  if when_unmet not in ('skip', 'skip-cascade', 'fail')
     or when_exhausted not in ('skip', 'skip-cascade', 'fail') then
    perform pgflow._raise('PGF05',
      format('%s: when_unmet / when_exhausted must be skip, skip-cascade or fail, got %L / %L',
        where_, when_unmet, when_exhausted), 'Use one of skip, skip-cascade, fail.');
  end if;
  if jsonb_typeof(required_input_pattern) is distinct from 'object'
       and required_input_pattern is not null
     or jsonb_typeof(forbidden_input_pattern) is distinct from 'object'
       and forbidden_input_pattern is not null then
    perform pgflow._raise('PGF05',
      format('%s: condition patterns must be JSON objects', where_),
      'Pass a JSON object such as {"status": "active"}.');
  end if;
  if step_slug = any(deps) or cardinality(deps) <> cardinality(array(select distinct unnest(deps))) then
    perform pgflow._raise('PGF05',
      format('%s: dependencies must be distinct and must not include the step itself', where_),
      'List each dependency once.');
  end if;
  select d into missing from unnest(deps) as d
  where not exists (select 1 from pgflow.steps s
                    where s.flow_slug = _validate_step.flow_slug and s.step_slug = d)
  limit 1;
  if missing is not null then
    perform pgflow._raise('PGF03', format('%s: unknown dependency %L', where_, missing),
      'Add the dependency before the steps that depend on it.');
  end if;
end;
$$;

-- _check_same_step(flow, where_, new_shape): an existing step must keep its definition.
create or replace function pgflow._check_same_step(flow pgflow.flows, where_ text, new_shape jsonb)
returns void
language plpgsql
stable
set search_path = ''
as $$
declare
  old_shape jsonb;
begin
  select st into old_shape
  from jsonb_array_elements(pgflow.get_flow_shape(flow.flow_slug) -> 'steps') as st
  where st ->> 'step_slug' = new_shape ->> 'step_slug';
  if old_shape <> new_shape then
    perform pgflow._raise('PGF04',
      format('%s already exists with a different definition: %s', where_,
        pgflow._shape_difference(jsonb_build_object('steps', jsonb_build_array(old_shape)),
                                 jsonb_build_object('steps', jsonb_build_array(new_shape)))),
      format('Flows are immutable. Use a new flow slug such as %L.', flow.flow_slug || '_v2'));
  end if;
end;
$$;

-- _check_declared_step(flow, where_, new_shape, position): with a declared shape, the step
-- added at `step_position` must be exactly the declared one.
create or replace function pgflow._check_declared_step(
  flow pgflow.flows, where_ text, new_shape jsonb, step_position int
)
returns void
language plpgsql
immutable
set search_path = ''
as $$
declare
  declared jsonb;
begin
  if flow.declared_shape is null then
    return;
  end if;
  declared := flow.declared_shape -> 'steps' -> step_position;
  if declared is null then
    perform pgflow._raise('PGF04',
      format('%s is not part of the flow''s declared shape (%s steps, checksum %s)', where_,
        jsonb_array_length(flow.declared_shape -> 'steps'), flow.checksum),
      format('Flows are immutable. Use a new flow slug such as %L.', flow.flow_slug || '_v2'));
  elsif declared <> new_shape then
    perform pgflow._raise('PGF04',
      format('%s does not match step %s of the flow''s declared shape: %s', where_,
        step_position + 1,
        pgflow._shape_difference(jsonb_build_object('steps', jsonb_build_array(declared)),
                                 jsonb_build_object('steps', jsonb_build_array(new_shape)))),
      'Apply the compiled SQL of this flow unchanged, or compile it again.');
  end if;
end;
$$;

-- ---- pgflow/sql/schema/0200_function_events.sql ----
-- Events (LISTEN/NOTIFY).
--
-- * Channel `pgflow_tasks`, payload = flow slug: tasks of that flow just became claimable.
--   Workers LISTEN here, so a dependent step's task is claimed within milliseconds.
-- * Channel `pgflow_run_<run_id>`: run and step status changes of one run, as JSON
--   {"event": "run:completed" | "step:<slug>:started" ..., "run_id", "flow_slug",
--   "step_slug", "status"}. Outputs are never inlined, so payloads stay far below the
--   8000-byte NOTIFY limit (slugs are at most 128 characters); readers fetch them with
--   get_run_with_states. Notifications are delivered at commit, and identical ones inside
--   one transaction are merged by Postgres.
-- Both are plpgsql rather than SQL functions: plpgsql caches its plans, and these run on
-- every state change.
create or replace function pgflow._emit(
  run_id uuid, flow_slug text, event text, status text, step_slug text default null
)
returns void
language plpgsql
volatile
set search_path = ''
as $$
begin
  perform pg_notify('pgflow_run_' || run_id::text, jsonb_build_object(
    'event', event, 'run_id', run_id, 'flow_slug', flow_slug,
    'step_slug', step_slug, 'status', status)::text);
end;
$$;

create or replace function pgflow._wake_workers(flow_slug text)
returns void
language plpgsql
volatile
set search_path = ''
as $$
begin
  perform pg_notify('pgflow_tasks', flow_slug);
end;
$$;

-- ---- pgflow/sql/schema/0210_function_advance_run.sql ----
-- Moving a run forward. Lock order inside a run, used by every function:
-- step_tasks -> step_states -> runs (the run row last), which keeps concurrent completions,
-- failures and cancellations of one run free of deadlocks.

-- _step_input(run_id, flow_slug, step_slug, run_input): what a non-map step receives:
-- the run input for a root step, else {dep_slug: output} of its completed dependencies
-- (a skipped dependency's key is absent).
create or replace function pgflow._step_input(
  run_id uuid, flow_slug text, step_slug text, run_input jsonb, deps_count int
)
returns jsonb
language plpgsql
stable
set search_path = ''
as $$
begin
  if deps_count = 0 then
    return run_input;
  end if;
  return (
    select coalesce(jsonb_object_agg(d.dep_slug, ds.output), '{}'::jsonb)
    from pgflow.deps d
    join pgflow.step_states ds
      on ds.run_id = _step_input.run_id and ds.step_slug = d.dep_slug
    where d.flow_slug = _step_input.flow_slug and d.step_slug = _step_input.step_slug
      and ds.status = 'completed'
  );
end;
$$;

-- _release_dependents(...): one dependency of each direct dependent is resolved. Returns
-- how many dependents have no unresolved dependency left (ready to start).
create or replace function pgflow._release_dependents(run_id uuid, flow_slug text, step_slug text)
returns int
language plpgsql
volatile
set search_path = ''
as $$
declare
  ready int;
begin
  with released as (
    update pgflow.step_states ss
    set remaining_deps = ss.remaining_deps - 1
    from pgflow.deps d
    where d.flow_slug = _release_dependents.flow_slug
      and d.dep_slug = _release_dependents.step_slug
      and ss.run_id = _release_dependents.run_id and ss.step_slug = d.step_slug
      and ss.status = 'created'
    returning ss.remaining_deps
  )
  select count(*) filter (where r.remaining_deps = 0) into ready from released r;
  return ready;
end;
$$;

-- _cancel_live_tasks(run_id, step_slug): cancel the queued and started tasks of a run (or
-- of one of its steps). Always the first lock a terminalising function takes, keeping the
-- tasks -> steps -> run order. Late reports for these tasks then change nothing.
create or replace function pgflow._cancel_live_tasks(run_id uuid, step_slug text default null)
returns void
language plpgsql
volatile
set search_path = ''
as $$
begin
  update pgflow.step_tasks t set status = 'cancelled', cancelled_at = now(), leased_until = null
  where t.run_id = _cancel_live_tasks.run_id and t.status in ('queued', 'started')
    and (_cancel_live_tasks.step_slug is null or t.step_slug = _cancel_live_tasks.step_slug);
end;
$$;

-- _skip_step(run_id, step_slug, reason, cascade): skip a step (cancelling any tasks it
-- still has) and, with cascade, every descendant; without cascade its dependents run
-- without its key. Returns the number of steps skipped.
create or replace function pgflow._skip_step(
  run_id uuid, step_slug text, reason text, cascade boolean
)
returns int
language plpgsql
volatile
set search_path = ''
as $$
declare
  flow text;
  skipped record;
  n int := 0;
begin
  select ss.flow_slug into flow from pgflow.step_states ss
  where ss.run_id = _skip_step.run_id and ss.step_slug = _skip_step.step_slug;
  perform pgflow._cancel_live_tasks(run_id, step_slug);
  for skipped in
    with recursive downstream(step_slug, reason) as (
      select _skip_step.step_slug, _skip_step.reason
      union
      select d.step_slug, format('ancestor %L was skipped', _skip_step.step_slug)
      from downstream ds join pgflow.deps d
        on d.flow_slug = flow and d.dep_slug = ds.step_slug
      where cascade
    )
    update pgflow.step_states ss
    set status = 'skipped', skip_reason = ds.reason, skipped_at = now()
    from (select distinct on (x.step_slug) x.step_slug, x.reason from downstream x
          order by x.step_slug, x.step_slug = _skip_step.step_slug desc) ds
    where ss.run_id = _skip_step.run_id and ss.step_slug = ds.step_slug
      and ss.status in ('created', 'started')
    returning ss.step_slug
  loop
    n := n + 1;
    perform pgflow._emit(run_id, flow, 'step:' || skipped.step_slug || ':skipped', 'skipped',
      skipped.step_slug);
  end loop;
  if not cascade then
    perform pgflow._release_dependents(run_id, flow, step_slug);
  end if;
  return n;
end;
$$;

-- _finish_run(run_id, status, error_message): terminalise a run and everything it still
-- has in flight (tasks, then steps, then the run: the documented lock order), so nothing
-- of a dead run is ever claimed again. No-op on a run that is already terminal.
create or replace function pgflow._finish_run(run_id uuid, status text, error_message text)
returns void
language plpgsql
volatile
set search_path = ''
as $$
declare
  flow text;
begin
  perform pgflow._cancel_live_tasks(run_id);
  update pgflow.step_states ss set status = 'cancelled', cancelled_at = now()
  where ss.run_id = _finish_run.run_id and ss.status in ('created', 'started');
  update pgflow.runs r set
    status = _finish_run.status,
    error_message = _finish_run.error_message,
    failed_at = case when _finish_run.status = 'failed' then now() end,
    cancelled_at = case when _finish_run.status = 'cancelled' then now() end,
    finished_at = now()
  where r.run_id = _finish_run.run_id and r.status = 'started'
  returning r.flow_slug into flow;
  if found then
    perform pgflow._emit(run_id, flow, 'run:' || status, status);
  end if;
end;
$$;

-- _fail_step(run_id, step_slug, message): a step failed for good: mark it and fail the run.
-- The run's live tasks are cancelled first, keeping the tasks -> steps -> run lock order.
create or replace function pgflow._fail_step(run_id uuid, step_slug text, message text)
returns void
language plpgsql
volatile
set search_path = ''
as $$
declare
  flow text;
begin
  perform pgflow._cancel_live_tasks(run_id);
  update pgflow.step_states ss
  set status = 'failed', failed_at = now(), error_message = message
  where ss.run_id = _fail_step.run_id and ss.step_slug = _fail_step.step_slug
    and ss.status in ('created', 'started')
  returning ss.flow_slug into flow;
  if found then
    perform pgflow._emit(run_id, flow, 'step:' || step_slug || ':failed', 'failed', step_slug);
  end if;
  perform pgflow._finish_run(run_id, 'failed',
    format('step %L failed: %s', step_slug, message));
end;
$$;

-- ---- pgflow/sql/schema/0220_function_start_ready_steps.sql ----
-- _start_step(run_id, step, run_input): a step whose dependencies are resolved starts:
-- conditions are evaluated once on its input; a map copies each element of its array into
-- its own task once (O(N), never per task); an empty map completes at once with [];
-- a non-array where an array is needed fails the run with TYPE_VIOLATION (keeping the value).
-- Returns the number of steps that finished here (completed or skipped), or -1 when the run
-- failed.
create or replace function pgflow._start_step(run_id uuid, step pgflow.steps, run_input jsonb)
returns int
language plpgsql
volatile
set search_path = ''
as $$
declare
  step_input jsonb;
  unmet text;
  arr jsonb;
  n int := 1;
  available timestamptz;
begin
  -- an earlier step of the same pass may have skipped this one
  perform 1 from pgflow.step_states ss
  where ss.run_id = _start_step.run_id and ss.step_slug = step.step_slug
    and ss.status = 'created' and ss.remaining_deps = 0;
  if not found then
    return 0;
  end if;
  -- the input is only needed for conditions and for a dependent map's array
  if step.required_input_pattern is not null or step.forbidden_input_pattern is not null
     or step.step_type = 'map' then
    step_input := pgflow._step_input(run_id, step.flow_slug, step.step_slug, run_input,
      step.deps_count);
    unmet := pgflow._unmet_condition(step, step_input);
  end if;
  if unmet is not null then
    if step.when_unmet = 'fail' then
      perform pgflow._fail_step(run_id, step.step_slug, unmet);
      return -1;
    end if;
    return pgflow._skip_step(run_id, step.step_slug, unmet, step.when_unmet = 'skip-cascade');
  end if;
  if step.step_type = 'map' then
    arr := case when step.deps_count = 0 then run_input
           else (select v from jsonb_each(step_input) as e(k, v)) end;
    if arr is null and step.deps_count > 0 then
      return pgflow._skip_step(run_id, step.step_slug,
        'the array it maps over comes from a skipped step', false);
    elsif jsonb_typeof(arr) is distinct from 'array' then
      perform pgflow._fail_step(run_id, step.step_slug, format(
        'TYPE_VIOLATION: map step %L expects an array %s but got %s: %s', step.step_slug,
        case when step.deps_count = 0 then 'as flow input' else 'from its dependency' end,
        coalesce(jsonb_typeof(arr), 'null'), left(coalesce(arr::text, 'null'), 10000)));
      return -1;
    end if;
    n := jsonb_array_length(arr);
    if n = 0 then
      update pgflow.step_states ss set status = 'started', started_at = now(),
        initial_tasks = 0, remaining_tasks = 0
      where ss.run_id = _start_step.run_id and ss.step_slug = step.step_slug;
      return least(pgflow._tasks_done(run_id, step.step_slug, 0, null), 1);
    end if;
  end if;

  available := now() + make_interval(secs => coalesce(step.opt_start_delay, 0));
  insert into pgflow.step_tasks (run_id, step_slug, task_index, flow_slug, input,
    available_at, priority_at)
  select _start_step.run_id, step.step_slug, i, step.flow_slug, e.value, available,
    available + make_interval(secs => i / 1000.0)
  from (
    select v.value, (v.ordinality - 1)::int as i
    from jsonb_array_elements(arr) with ordinality as v
    where step.step_type = 'map'
    union all
    select null, 0 where step.step_type = 'single'
  ) e;
  update pgflow.step_states ss set status = 'started', started_at = now(),
    initial_tasks = n, remaining_tasks = n
  where ss.run_id = _start_step.run_id and ss.step_slug = step.step_slug;
  perform pgflow._emit(run_id, step.flow_slug, 'step:' || step.step_slug || ':started',
    'started', step.step_slug);
  if coalesce(step.opt_start_delay, 0) = 0 then
    perform pgflow._wake_workers(step.flow_slug);
  end if;
  return 0;
end;
$$;

-- _unmet_condition(step, input): NULL when the step's conditions hold on its input, else
-- the reason. Patterns are JSON containment (@>) tests.
create or replace function pgflow._unmet_condition(step pgflow.steps, step_input jsonb)
returns text
language plpgsql
immutable
set search_path = ''
as $$
begin
  if step.required_input_pattern is not null
     and not (step_input @> step.required_input_pattern) then
    return format('condition unmet: input does not contain %s', step.required_input_pattern);
  elsif step.forbidden_input_pattern is not null
     and step_input @> step.forbidden_input_pattern then
    return format('condition unmet: input contains forbidden %s', step.forbidden_input_pattern);
  end if;
  return null;
end;
$$;

-- _advance_run(run_id, finished, scan): with `scan`, start every step whose dependencies
-- are resolved (again and again while empty maps and skips resolve more); then count
-- `finished` (steps the caller completed or skipped) plus those finished here off the run's
-- remaining steps, completing the run when none remain: its output is {leaf_slug: output}
-- of its completed leaf steps. The run row is locked last (one update, and one more that
-- stores the output when the run completes).
create or replace function pgflow._advance_run(run_id uuid, finished int, scan boolean)
returns void
language plpgsql
volatile
set search_path = ''
as $$
declare
  run_input jsonb;
  step pgflow.steps;
  progressed boolean := scan;
  result int;
  run_status text;
  flow text;
begin
  if scan then
    select r.input into run_input from pgflow.runs r where r.run_id = _advance_run.run_id;
  end if;
  while progressed loop
    progressed := false;
    for step in
      select s.* from pgflow.step_states ss
      join pgflow.steps s on s.flow_slug = ss.flow_slug and s.step_slug = ss.step_slug
      where ss.run_id = _advance_run.run_id and ss.status = 'created' and ss.remaining_deps = 0
      order by s.step_index
    loop
      result := pgflow._start_step(run_id, step, run_input);
      if result < 0 then
        return;
      end if;
      finished := finished + result;
      progressed := progressed or result > 0;
    end loop;
  end loop;

  update pgflow.runs r set
    remaining_steps = r.remaining_steps - finished,
    status = case when r.remaining_steps = finished then 'completed' else r.status end,
    completed_at = case when r.remaining_steps = finished then now() end,
    finished_at = case when r.remaining_steps = finished then now() end
  where r.run_id = _advance_run.run_id and r.status = 'started'
    and (finished > 0 or r.remaining_steps = 0)
  returning r.status, r.flow_slug into run_status, flow;
  if run_status = 'completed' then
    -- A statement of its own, so its snapshot sees leaf outputs committed by concurrent
    -- completions this transaction waited for (see _tasks_done).
    update pgflow.runs r set output = (
      select coalesce(jsonb_object_agg(ss.step_slug, ss.output), '{}'::jsonb)
      from pgflow.step_states ss
      where ss.run_id = r.run_id and ss.status = 'completed'
        and not exists (select 1 from pgflow.deps d
                        where d.flow_slug = ss.flow_slug and d.dep_slug = ss.step_slug))
    where r.run_id = _advance_run.run_id;
    perform pgflow._emit(run_id, flow, 'run:completed', 'completed');
  end if;
end;
$$;

-- ---- pgflow/sql/schema/0230_function_start_flow.sql ----
-- start_flow(flow_slug, input, run_id): start a run and return its row.
-- * Unknown slug: PGF02. A flow whose compiled SQL stopped midway ('defining'): PGF06.
-- * A caller-supplied run_id that already exists returns that run unchanged (idempotent
--   start); if it belongs to another flow: PGF08.
-- * Root steps start at once (or after their start_delay); a root map over a non-array
--   input fails the run with TYPE_VIOLATION, which the returned row shows.
create or replace function pgflow.start_flow(
  flow_slug text, input jsonb, run_id uuid default null
)
returns pgflow.runs
language plpgsql
volatile
security definer
set search_path = ''
-- every statement inside is an index lookup: a generic plan is right and saves re-planning
set plan_cache_mode = force_generic_plan
as $$
declare
  flow pgflow.flows;
  result pgflow.runs;
  new_id uuid := coalesce(start_flow.run_id, pgflow._uuid7());
begin
  select * into flow from pgflow.flows f where f.flow_slug = start_flow.flow_slug;
  if not found then
    perform pgflow._raise('PGF02', format('unknown flow %L', start_flow.flow_slug),
      'Deploy it first: `pgflow deploy FLOWS` (or apply its compiled SQL); '
      || '`pgflow check FLOWS` lists what is deployed.');
  elsif flow.status = 'defining' then
    perform pgflow._raise('PGF06', format(
      'flow %L is only partly defined (%s of %s steps)', start_flow.flow_slug,
      (select count(*) from pgflow.steps s where s.flow_slug = start_flow.flow_slug),
      jsonb_array_length(flow.declared_shape -> 'steps')),
      'Its compiled SQL stopped midway; apply it again to finish the definition.');
  end if;
  if pg_column_size(input) > pgflow._max_payload_bytes() then
    perform pgflow._raise('PGF08', format(
      'flow %L: run input is %s bytes, over the limit of %s bytes', start_flow.flow_slug,
      pg_column_size(input), pgflow._max_payload_bytes()),
      'Store large data elsewhere (a table, object storage) and pass a reference; '
      || 'or raise the pgflow.max_payload_bytes setting.');
  end if;
  if input is null then
    perform pgflow._raise('PGF08', format('flow %L: run input must not be NULL',
      start_flow.flow_slug), 'Pass a JSON value, e.g. ''{}''::jsonb.');
  end if;

  insert into pgflow.runs as r (run_id, flow_slug, input, remaining_steps)
  values (new_id, start_flow.flow_slug, start_flow.input,
    (select count(*) from pgflow.steps s where s.flow_slug = start_flow.flow_slug))
  on conflict do nothing
  returning * into result;
  if not found then
    select * into result from pgflow.runs r where r.run_id = new_id;
    if result.flow_slug <> start_flow.flow_slug then
      perform pgflow._raise('PGF08', format('run %s already exists for flow %L, not %L',
        new_id, result.flow_slug, start_flow.flow_slug),
        'Use a new run_id, or omit it to let pgflow generate one.');
    end if;
    return result;
  end if;

  insert into pgflow.step_states (run_id, step_slug, flow_slug, step_index, step_type,
    remaining_deps)
  select new_id, s.step_slug, s.flow_slug, s.step_index, s.step_type, s.deps_count
  from pgflow.steps s where s.flow_slug = start_flow.flow_slug;
  perform pgflow._emit(new_id, start_flow.flow_slug, 'run:started', 'started');
  perform pgflow._advance_run(new_id, 0, true);
  select * into result from pgflow.runs r where r.run_id = new_id;
  return result;
end;
$$;

-- ---- pgflow/sql/schema/0240_function_claim_tasks.sql ----
-- claim_tasks(flow_slugs, worker_id, max_tasks): lease up to max_tasks claimable tasks of
-- the given flows to a worker, in one round trip.
-- * Claimable: status 'queued' and available_at <= now(); taken in priority_at order
--   (fair: a large map interleaves with later work) with FOR UPDATE SKIP LOCKED, so a
--   task is never leased to two workers at once.
-- * Each claimed task: attempts_count + 1, leased until now() + its effective timeout
--   (step's, else flow's), worker_id recorded. Registration is not required.
-- * Expired leases of these flows are handled first (re-queued, or failed when exhausted),
--   so correctness never depends on a cron job.
-- * input: the run input for a root step, {dep_slug: output} of completed dependencies for
--   a dependent step (skipped ones absent), the element for a map task.
-- Hot path: the partial index step_tasks_ready; cost independent of finished history.
create or replace function pgflow.claim_tasks(
  flow_slugs text[], worker_id uuid, max_tasks int default 10
)
returns setof pgflow.claimed_task
language plpgsql
volatile
security definer
set search_path = ''
-- every statement inside is an index lookup: a generic plan is right and saves re-planning
set plan_cache_mode = force_generic_plan
as $$
begin
  perform pgflow._expire_leases(flow_slugs, 100);
  -- Plans here must not depend on statistics: the picked rows are re-found by ctid (stable
  -- while we hold their row locks) and everything else is looked up per row, so a claim
  -- never scans the table, whatever the planner estimates.
  return query
  with picked as (
    -- per flow, the oldest claimable tasks, locked as the index is walked (SKIP LOCKED);
    -- then the oldest max_tasks of those across flows, so no flow starves another
    select p.ctid
    from unnest(claim_tasks.flow_slugs) as fs(slug)
    cross join lateral (
      select t.ctid, t.priority_at
      from pgflow.step_tasks t
      where t.flow_slug = fs.slug and t.status = 'queued' and t.available_at <= now()
      order by t.priority_at
      limit greatest(claim_tasks.max_tasks, 0)
      for update skip locked
    ) p
    order by p.priority_at
    limit greatest(claim_tasks.max_tasks, 0)
  ),
  claimed as (
    update pgflow.step_tasks t set
      status = 'started',
      attempts_count = t.attempts_count + 1,
      started_at = now(),
      worker_id = claim_tasks.worker_id,
      leased_until = now() + make_interval(secs => (
        select coalesce(s.opt_timeout, f.opt_timeout)
        from pgflow.steps s join pgflow.flows f on f.flow_slug = s.flow_slug
        where s.flow_slug = t.flow_slug and s.step_slug = t.step_slug))
    where t.ctid = any(array(select p.ctid from picked p))
    returning t.run_id, t.flow_slug, t.step_slug, t.task_index, t.attempts_count, t.input,
      t.leased_until
  )
  select c.run_id, c.flow_slug, c.step_slug, c.task_index, c.attempts_count,
    case
      when c.input is not null then c.input  -- a map element
      when not exists (select 1 from pgflow.deps d
                       where d.flow_slug = c.flow_slug and d.step_slug = c.step_slug)
        then (select r.input from pgflow.runs r where r.run_id = c.run_id)
      else (
        -- inlined rather than a function call: this is the hot path
        select coalesce(jsonb_object_agg(d.dep_slug, ds.output), '{}'::jsonb)
        from pgflow.deps d
        join pgflow.step_states ds on ds.run_id = c.run_id and ds.step_slug = d.dep_slug
        where d.flow_slug = c.flow_slug and d.step_slug = c.step_slug
          and ds.status = 'completed'
      ) end,
    (select r.input from pgflow.runs r where r.run_id = c.run_id),
    c.leased_until
  from claimed c;
end;
$$;

-- _expire_leases(flow_slugs, max_tasks): tasks whose lease ran out (worker died or hung)
-- count as a failed attempt: re-queued with backoff, or failed for good when exhausted.
-- NULL flow_slugs means every flow. Returns how many leases expired.
create or replace function pgflow._expire_leases(flow_slugs text[], max_tasks int)
returns int
language plpgsql
volatile
set search_path = ''
as $$
declare
  t record;
  n int := 0;
begin
  for t in
    select x.run_id, x.step_slug, x.task_index, x.attempts_count, x.leased_until, x.started_at
    from pgflow.step_tasks x
    where x.status = 'started' and x.leased_until < now()
      and (flow_slugs is null or x.flow_slug = any(flow_slugs))
    order by x.leased_until
    limit max_tasks
    for update skip locked
  loop
    perform pgflow._fail_task(t.run_id, t.step_slug, t.task_index, t.attempts_count,
      format('lease expired: attempt %s was not reported within its timeout of %s s',
        t.attempts_count, round(extract(epoch from t.leased_until - t.started_at))),
      'LeaseExpired', null);
    n := n + 1;
  end loop;
  return n;
end;
$$;

-- sweep_expired_tasks(): expire leases of every flow, for runs that no worker polls.
-- Workers do this inside claim_tasks; schedule this only if you want it without workers.
create or replace function pgflow.sweep_expired_tasks()
returns int
language sql
volatile
security definer
set search_path = ''
as $$
  select pgflow._expire_leases(null, 1000000);
$$;

-- ---- pgflow/sql/schema/0250_function_complete_tasks.sql ----
-- complete_tasks(run_ids, step_slugs, task_indexes, outputs, attempts): report several
-- finished tasks in one transaction (parallel arrays; attempts may be NULL).
-- * Only a task still leased to the reported attempt ('started', and attempts_count equal
--   to the attempt when one is given) is completed; late, duplicate or stale reports change
--   nothing and never raise.
-- * Per step, remaining_tasks is decremented once per batch (not once per task); the last
--   task completes the step: a map's outputs are aggregated once, in task_index order.
-- * Returns the current row of every reported task.
-- Locks: the reported tasks in primary-key order, then step states, then the run rows.
create or replace function pgflow.complete_tasks(
  run_ids uuid[], step_slugs text[], task_indexes int[], outputs jsonb[],
  attempts int[] default null
)
returns setof pgflow.step_tasks
language plpgsql
volatile
security definer
set search_path = ''
-- every statement inside is an index lookup: a generic plan is right and saves re-planning
set plan_cache_mode = force_generic_plan
as $$
declare
  req record;
  t pgflow.step_tasks;
  cur_run uuid;
  cur_step text;
  n int := 0;
  last_output jsonb;
  finished int := 0;
  scan boolean := false;
  done int;
  max_bytes bigint := pgflow._max_payload_bytes();
begin
  -- One primary-key update per task (the planner cannot pick a scan of all leased tasks),
  -- in primary-key order, so concurrent batches lock rows in the same order.
  for req in
    select * from unnest(run_ids, step_slugs, task_indexes, outputs, attempts)
      as r(run_id, step_slug, task_index, output, attempt)
    order by r.run_id, r.step_slug, r.task_index
  loop
    if pg_column_size(req.output) > max_bytes then
      -- an oversized output is a failed attempt, not a completion
      return next pgflow._fail_task(req.run_id, req.step_slug, req.task_index, req.attempt,
        format('output is %s bytes, over the limit of %s bytes (pgflow.max_payload_bytes)',
          pg_column_size(req.output), max_bytes), 'OutputTooLarge', null);
      continue;
    end if;
    update pgflow.step_tasks x set
      status = 'completed', output = req.output, completed_at = now(), leased_until = null
    where x.run_id = req.run_id and x.step_slug = req.step_slug
      and x.task_index = req.task_index and x.status = 'started'
      and (req.attempt is null or x.attempts_count = req.attempt)
    returning * into t;
    if not found then
      select * into t from pgflow.step_tasks x
      where x.run_id = req.run_id and x.step_slug = req.step_slug
        and x.task_index = req.task_index;
      return next t;
      continue;
    end if;
    return next t;
    if n > 0 and (cur_run <> req.run_id or cur_step <> req.step_slug) then
      done := pgflow._tasks_done(cur_run, cur_step, n, last_output);
      finished := finished + least(done, 1);
      scan := scan or done = 2;
      n := 0;
      if cur_run <> req.run_id then
        if finished > 0 then
          perform pgflow._advance_run(cur_run, finished, scan);
        end if;
        finished := 0;
        scan := false;
      end if;
    end if;
    cur_run := req.run_id;
    cur_step := req.step_slug;
    n := n + 1;
    last_output := req.output;
  end loop;
  if n > 0 then
    done := pgflow._tasks_done(cur_run, cur_step, n, last_output);
    finished := finished + least(done, 1);
    if finished > 0 then
      perform pgflow._advance_run(cur_run, finished, scan or done = 2);
    end if;
  end if;
end;
$$;

-- _tasks_done(run_id, step_slug, n, output): n tasks of a step completed. One update
-- decrements the step's remaining tasks or, when these were the last, completes the step
-- (a map's outputs aggregated once, in task_index order, [] for an empty map started with
-- n = 0; `output` is a single step's task output), then releases its dependents.
-- Returns 0 when the step is not done, 1 when it completed, 2 when it also made a
-- dependent ready (the caller then has steps to start).
-- A map's outputs are aggregated by a second statement, never inside the counting UPDATE:
-- when that UPDATE waited for a concurrent completion's row lock, READ COMMITTED re-checks
-- the row but its sub-selects keep the statement's old snapshot, which would miss the
-- output the other transaction just committed. The next statement's snapshot sees it.
create or replace function pgflow._tasks_done(run_id uuid, step_slug text, n int, output jsonb)
returns int
language plpgsql
volatile
set search_path = ''
as $$
declare
  new_status text;
  flow text;
  kind text;
begin
  update pgflow.step_states ss set
    remaining_tasks = ss.remaining_tasks - n,
    status = case when ss.remaining_tasks = n then 'completed' else ss.status end,
    completed_at = case when ss.remaining_tasks = n then now() end,
    output = case when ss.remaining_tasks = n and ss.step_type = 'single'
      then _tasks_done.output end
  where ss.run_id = _tasks_done.run_id and ss.step_slug = _tasks_done.step_slug
    and ss.status = 'started'
  returning ss.status, ss.flow_slug, ss.step_type into new_status, flow, kind;
  if new_status is distinct from 'completed' then
    return 0;
  end if;
  if kind = 'map' then
    update pgflow.step_states ss set output = (
      select coalesce(jsonb_agg(t.output order by t.task_index), '[]'::jsonb)
      from pgflow.step_tasks t
      where t.run_id = ss.run_id and t.step_slug = ss.step_slug)
    where ss.run_id = _tasks_done.run_id and ss.step_slug = _tasks_done.step_slug;
  end if;
  perform pgflow._emit(run_id, flow, 'step:' || step_slug || ':completed', 'completed', step_slug);
  return 1 + least(pgflow._release_dependents(run_id, flow, step_slug), 1);
end;
$$;

-- complete_task(run_id, step_slug, task_index, output, attempt): report one finished task
-- (pgflow's parameter names; `attempt` fences stale reports). Returns the task's row.
create or replace function pgflow.complete_task(
  run_id uuid, step_slug text, task_index int, output jsonb, attempt int default null
)
returns pgflow.step_tasks
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  result pgflow.step_tasks;
begin
  select * into result from pgflow.complete_tasks(array[run_id], array[step_slug],
    array[task_index], array[output], array[attempt]);
  return result;
end;
$$;

-- ---- pgflow/sql/schema/0260_function_fail_task.sql ----
-- fail_task(run_id, step_slug, task_index, error_message, attempt, error_type,
--           error_traceback): report a failed attempt (pgflow's parameter names, plus the
-- optional `attempt` fence and the exception's type and traceback).
-- * Only a task still leased to that attempt is affected; anything else (late, duplicate,
--   stale) changes nothing and returns the current row.
-- * With attempts left (max_attempts counts the first one) the task is re-queued after
--   base_delay * 2^attempts seconds, capped at one hour. Step options override flow options.
-- * Exhausted: the task fails and the step's when_exhausted decides: 'fail' fails the run
--   (every other live task and step of the run is cancelled), 'skip' skips the step
--   (dependents run without its key), 'skip-cascade' skips it and all its descendants.
create or replace function pgflow.fail_task(
  run_id uuid, step_slug text, task_index int, error_message text,
  attempt int default null, error_type text default null, error_traceback text default null
)
returns pgflow.step_tasks
language plpgsql
volatile
security definer
set search_path = ''
-- every statement inside is an index lookup: a generic plan is right and saves re-planning
set plan_cache_mode = force_generic_plan
as $$
begin
  return pgflow._fail_task(run_id, step_slug, task_index, attempt, error_message, error_type,
    error_traceback);
end;
$$;

-- fail_tasks(...): the batch form of fail_task, in primary-key order. Returns current rows.
create or replace function pgflow.fail_tasks(
  run_ids uuid[], step_slugs text[], task_indexes int[], error_messages text[],
  attempts int[] default null, error_types text[] default null,
  error_tracebacks text[] default null
)
returns setof pgflow.step_tasks
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  r record;
begin
  for r in
    select * from unnest(run_ids, step_slugs, task_indexes, error_messages, attempts,
      error_types, error_tracebacks) as x(run_id, step_slug, task_index, msg, attempt, typ, tb)
    order by x.run_id, x.step_slug, x.task_index
  loop
    return next pgflow._fail_task(r.run_id, r.step_slug, r.task_index, r.attempt, r.msg, r.typ,
      r.tb);
  end loop;
end;
$$;

create or replace function pgflow._fail_task(
  run_id uuid, step_slug text, task_index int, attempt int, error_message text,
  error_type text, error_traceback text
)
returns pgflow.step_tasks
language plpgsql
volatile
set search_path = ''
as $$
declare
  t pgflow.step_tasks;
  max_attempts int;
  base_delay int;
  when_exhausted text;
  delay numeric;
  msg text := coalesce(error_message, 'unknown error');
  skipped int;
begin
  select x.* into t from pgflow.step_tasks x
  where x.run_id = _fail_task.run_id and x.step_slug = _fail_task.step_slug
    and x.task_index = _fail_task.task_index
  for update;
  if not found or t.status <> 'started'
     or (attempt is not null and t.attempts_count <> attempt) then
    return t;
  end if;
  select coalesce(s.opt_max_attempts, f.opt_max_attempts),
         coalesce(s.opt_base_delay, f.opt_base_delay), s.when_exhausted
  into max_attempts, base_delay, when_exhausted
  from pgflow.steps s join pgflow.flows f on f.flow_slug = s.flow_slug
  where s.flow_slug = t.flow_slug and s.step_slug = t.step_slug;

  if t.attempts_count < max_attempts then
    delay := least(base_delay * power(2::numeric, t.attempts_count), 3600);
    update pgflow.step_tasks x set
      status = 'queued', leased_until = null, worker_id = null,
      available_at = now() + make_interval(secs => delay),
      priority_at = now() + make_interval(secs => delay + x.task_index / 1000.0),
      error_message = msg, error_type = _fail_task.error_type,
      error_traceback = _fail_task.error_traceback
    where x.run_id = t.run_id and x.step_slug = t.step_slug and x.task_index = t.task_index
    returning * into t;
    if delay = 0 then
      perform pgflow._wake_workers(t.flow_slug);
    end if;
    return t;
  end if;

  update pgflow.step_tasks x set
    status = 'failed', leased_until = null, failed_at = now(), error_message = msg,
    error_type = _fail_task.error_type, error_traceback = _fail_task.error_traceback
  where x.run_id = t.run_id and x.step_slug = t.step_slug and x.task_index = t.task_index
  returning * into t;
  msg := format('%s%s (attempt %s of %s%s)', coalesce(_fail_task.error_type || ': ', ''),
    msg, t.attempts_count, max_attempts,
    case when t.task_index > 0 or t.input is not null
      then format(', map task %s', t.task_index) else '' end);
  if when_exhausted = 'fail' then
    perform pgflow._fail_step(t.run_id, t.step_slug, msg);
  else
    skipped := pgflow._skip_step(t.run_id, t.step_slug, 'retries exhausted: ' || msg,
      when_exhausted = 'skip-cascade');
    perform pgflow._advance_run(t.run_id, skipped, true);
  end if;
  select x.* into t from pgflow.step_tasks x
  where x.run_id = _fail_task.run_id and x.step_slug = _fail_task.step_slug
    and x.task_index = _fail_task.task_index;
  return t;
end;
$$;

-- ---- pgflow/sql/schema/0270_function_runs.sql ----
-- cancel_run(run_id): cancel a live run and everything it has in flight (tasks, steps,
-- then the run). Cancelling a finished run changes nothing. Unknown run: PGF07.
create or replace function pgflow.cancel_run(run_id uuid)
returns pgflow.runs
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  result pgflow.runs;
begin
  perform pgflow._finish_run(run_id, 'cancelled', 'cancelled on request');
  select * into result from pgflow.runs r where r.run_id = cancel_run.run_id;
  if not found then
    perform pgflow._raise('PGF07', format('unknown run %s', run_id),
      'Check the run id; `pgflow runs` lists recent runs.');
  end if;
  return result;
end;
$$;

-- get_run_with_states(run_id): {"run": {...}, "steps": [{step_slug, status, output,
-- error_message, skip_reason, attempts, tasks: {status: count}, timestamps ...}]} in
-- definition order. For inspection and clients; unknown run: PGF07.
create or replace function pgflow.get_run_with_states(run_id uuid)
returns jsonb
language plpgsql
stable
security definer
set search_path = ''
as $$
declare
  result jsonb;
begin
  select jsonb_build_object('run', to_jsonb(r), 'steps', coalesce((
    select jsonb_agg(to_jsonb(ss) || jsonb_build_object(
      'step_type', s.step_type,
      'attempts', coalesce(tk.attempts, 0),
      'tasks', coalesce(tk.by_status, '{}'::jsonb),
      'error_type', tk.error_type,
      'error_traceback', tk.error_traceback
    ) order by ss.step_index)
    from pgflow.step_states ss
    join pgflow.steps s on s.flow_slug = ss.flow_slug and s.step_slug = ss.step_slug
    left join lateral (
      select max(t.attempts_count) as attempts,
        (select jsonb_object_agg(c.status, c.n) from (
          select t2.status, count(*) as n from pgflow.step_tasks t2
          where t2.run_id = ss.run_id and t2.step_slug = ss.step_slug group by t2.status) c
        ) as by_status,
        (array_agg(t.error_type order by t.task_index)
          filter (where t.status = 'failed'))[1] as error_type,
        (array_agg(t.error_traceback order by t.task_index)
          filter (where t.status = 'failed'))[1] as error_traceback
      from pgflow.step_tasks t
      where t.run_id = ss.run_id and t.step_slug = ss.step_slug
    ) tk on true
    where ss.run_id = r.run_id
  ), '[]'::jsonb))
  into result
  from pgflow.runs r where r.run_id = get_run_with_states.run_id;
  if result is null then
    perform pgflow._raise('PGF07', format('unknown run %s', run_id),
      'Check the run id; `pgflow runs` lists recent runs.');
  end if;
  return result;
end;
$$;

-- prune(older_than): delete runs that finished more than `older_than` ago, with their step
-- states and tasks. Live runs are never touched. Returns the number of runs deleted.
create or replace function pgflow.prune(older_than interval)
returns int
language sql
volatile
security definer
set search_path = ''
as $$
  with doomed as (
    -- a run that finished before the cut-off started before it too: walk runs_by_started
    select r.run_id from pgflow.runs r
    where r.started_at < now() - older_than and r.finished_at < now() - older_than
  ), tasks as (
    delete from pgflow.step_tasks t using doomed d where t.run_id = d.run_id
  ), states as (
    delete from pgflow.step_states ss using doomed d where ss.run_id = d.run_id
  ), runs as (
    delete from pgflow.runs r using doomed d where r.run_id = d.run_id returning 1
  )
  select count(*)::int from runs;
$$;

-- delete_flow_and_data(flow_slug): remove a flow, its definition and all its runs
-- (development and tests). An unknown slug is a no-op.
create or replace function pgflow.delete_flow_and_data(flow_slug text)
returns void
language sql
volatile
security definer
set search_path = ''
as $$
  delete from pgflow.step_tasks t using pgflow.runs r
  where r.flow_slug = delete_flow_and_data.flow_slug and t.run_id = r.run_id;
  delete from pgflow.step_states ss using pgflow.runs r
  where r.flow_slug = delete_flow_and_data.flow_slug and ss.run_id = r.run_id;
  delete from pgflow.runs r where r.flow_slug = delete_flow_and_data.flow_slug;
  delete from pgflow.flows f where f.flow_slug = delete_flow_and_data.flow_slug;
$$;

-- ---- pgflow/sql/schema/0280_function_workers.sql ----
-- Workers: registration and heartbeats (for inspection: who is alive, what it polls) and
-- the graceful-shutdown release. Claiming never requires registration.

-- register_worker(worker_id, flow_slugs, hostname, pid): announce a worker (upsert).
create or replace function pgflow.register_worker(
  worker_id uuid, flow_slugs text[], hostname text default null, pid int default null
)
returns pgflow.workers
language sql
volatile
security definer
set search_path = ''
as $$
  insert into pgflow.workers as w (worker_id, flow_slugs, hostname, pid)
  values (worker_id, coalesce(flow_slugs, '{}'), hostname, pid)
  on conflict (worker_id) do update set
    flow_slugs = excluded.flow_slugs, hostname = excluded.hostname, pid = excluded.pid,
    last_heartbeat_at = now(), stopped_at = null
  returning *;
$$;

-- heartbeat(worker_id): the worker is alive. Returns false for an unknown worker.
create or replace function pgflow.heartbeat(worker_id uuid)
returns boolean
language sql
volatile
security definer
set search_path = ''
as $$
  with hb as (
    update pgflow.workers w set last_heartbeat_at = now()
    where w.worker_id = heartbeat.worker_id returning 1
  )
  select exists (select 1 from hb);
$$;

-- release_tasks(worker_id): a worker shutting down gives back the tasks it still holds.
-- They are re-queued at once and the attempt is not counted. Returns how many.
create or replace function pgflow.release_tasks(worker_id uuid)
returns int
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  flows text[];
  n int;
begin
  with released as (
    update pgflow.step_tasks t set
      status = 'queued', attempts_count = t.attempts_count - 1, worker_id = null,
      leased_until = null, started_at = null, available_at = now(),
      priority_at = t.queued_at + make_interval(secs => t.task_index / 1000.0)
    where t.worker_id = release_tasks.worker_id and t.status = 'started'
      and t.leased_until is not null  -- walk the index of live leases, not the table
    returning t.flow_slug
  )
  select array_agg(distinct r.flow_slug), count(*) into flows, n from released r;
  perform pgflow._wake_workers(f) from unnest(flows) as f;
  return n;
end;
$$;

-- worker_stopped(worker_id): mark a worker as stopped.
create or replace function pgflow.worker_stopped(worker_id uuid)
returns void
language sql
volatile
security definer
set search_path = ''
as $$
  update pgflow.workers w set stopped_at = now() where w.worker_id = worker_stopped.worker_id;
$$;

-- ---- pgflow/sql/schema/0900_roles_and_grants.sql ----
-- Roles and privileges.
--
-- Every public function is SECURITY DEFINER with a fixed search_path, so callers need no
-- table privileges at all. Nothing is executable by PUBLIC.
-- * pgflow_worker: EXECUTE on the worker functions only (claim, report, release, heartbeat).
--   It cannot read or write the tables directly and cannot start flows unless granted
--   (GRANT EXECUTE ON FUNCTION pgflow.start_flow(text, jsonb, uuid) TO pgflow_worker).
-- * pgflow_reader: SELECT on the tables and EXECUTE on the inspection functions.
-- Roles are created when the installing role may create roles; otherwise the statements a
-- DBA must run are raised as NOTICEs (the installer prints them).
revoke all on all functions in schema pgflow from public;
revoke all on schema pgflow from public;

do $$
declare
  can_create boolean;
  stmt text;
  role_name text;
begin
  select r.rolcreaterole or r.rolsuper into can_create
  from pg_catalog.pg_roles r where r.rolname = current_user;
  foreach role_name in array array['pgflow_worker', 'pgflow_reader'] loop
    if not exists (select 1 from pg_catalog.pg_roles r where r.rolname = role_name) then
      stmt := format('create role %I nologin', role_name);
      if can_create then
        execute stmt;
      else
        raise notice 'pgflow: ask a DBA to run: %;', stmt;
      end if;
    end if;
  end loop;

  foreach stmt in array array[
    'grant usage on schema pgflow to pgflow_worker, pgflow_reader',
    'grant execute on function pgflow.claim_tasks(text[], uuid, int), '
      || 'pgflow.complete_task(uuid, text, int, jsonb, int), '
      || 'pgflow.complete_tasks(uuid[], text[], int[], jsonb[], int[]), '
      || 'pgflow.fail_task(uuid, text, int, text, int, text, text), '
      || 'pgflow.fail_tasks(uuid[], text[], int[], text[], int[], text[], text[]), '
      || 'pgflow.release_tasks(uuid), pgflow.register_worker(uuid, text[], text, int), '
      || 'pgflow.heartbeat(uuid), pgflow.worker_stopped(uuid) to pgflow_worker',
    'grant select on all tables in schema pgflow to pgflow_reader',
    'grant execute on function pgflow.get_run_with_states(uuid), '
      || 'pgflow.get_flow_shape(text), pgflow.flow_checksum(text), '
      || 'pgflow.is_valid_slug(text), pgflow.shape_checksum(jsonb) to pgflow_reader'
  ] loop
    if exists (select 1 from pg_catalog.pg_roles r where r.rolname = 'pgflow_worker')
       and exists (select 1 from pg_catalog.pg_roles r where r.rolname = 'pgflow_reader') then
      execute stmt;
    else
      raise notice 'pgflow: ask a DBA to run: %;', stmt;
    end if;
  end loop;
end
$$;

-- Functions added by later migrations must not become executable by PUBLIC either.
alter default privileges in schema pgflow revoke execute on functions from public;
