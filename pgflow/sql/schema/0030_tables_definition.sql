-- Definition tables: flows, steps, deps. Written only by create_flow / add_step and
-- delete_flow_and_data; read on every claim (small, always cached).
--
-- flows.status is 'defining' while a flow declared with a shape (compiled SQL) has not yet
-- received all of its add_step calls; start_flow refuses such a flow. Flows defined without a
-- shape (pgflow-style SQL) are 'ready' at once and grow step by step.
-- flows.checksum is the checksum of the declared shape (NULL when none was declared).
-- Two tunables, not part of the shape: input_schema is the JSON Schema that starts by slug
-- validate the run input against (NULL: starts are not validated, e.g. flows defined by
-- pgflow's TypeScript SQL); retention is how long finished runs are kept before workers
-- prune them (NULL: kept until pruned by hand).
create table if not exists pgflow.flows (
  flow_slug text primary key check (pgflow.is_valid_slug(flow_slug)),
  opt_max_attempts int not null default 3 check (opt_max_attempts >= 1),
  opt_base_delay int not null default 1 check (opt_base_delay >= 0),
  opt_timeout int not null default 60 check (opt_timeout >= 1),
  status text not null default 'ready' check (status in ('defining', 'ready')),
  declared_shape jsonb,
  checksum text,
  created_at timestamptz not null default pgflow._now(),
  input_schema jsonb check (
    input_schema is null or jsonb_typeof(input_schema) in ('object', 'boolean')
  ),
  retention interval check (retention is null or retention > interval '0'),
  -- the default priority of the flow's runs (start_flow may override it; higher first)
  priority int not null default 0 check (priority between -100 and 100)
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
  created_at timestamptz not null default pgflow._now(),
  primary key (flow_slug, step_slug),
  unique (flow_slug, step_index),
  check (step_type <> 'map' or deps_count <= 1)
);

-- deps: step_slug depends on dep_slug.
create table if not exists pgflow.deps (
  flow_slug text not null,
  dep_slug text not null,
  step_slug text not null,
  created_at timestamptz not null default pgflow._now(),
  primary key (flow_slug, step_slug, dep_slug),
  foreign key (flow_slug, dep_slug)
    references pgflow.steps (flow_slug, step_slug) on delete cascade,
  foreign key (flow_slug, step_slug)
    references pgflow.steps (flow_slug, step_slug) on delete cascade,
  check (dep_slug <> step_slug)
);

create index if not exists deps_dependents on pgflow.deps (flow_slug, dep_slug);

-- Step slugs folded to lower case: add_step refuses a new step that differs from another
-- only in letter case (pgflow 0.17) with one lookup here.
create index if not exists steps_slug_folded on pgflow.steps (flow_slug, lower(step_slug));

-- settings: protective limits, owned by the database owner. Only the owner can change them
-- (pgflow.set_setting, or UPDATE as the owner); no caller can raise, break or disable them
-- for its session, unlike a GUC that any session may SET.
-- * max_payload_bytes: the largest run input or task output accepted (default 16 MiB).
-- * read_budget_bytes: how many bytes of inputs and outputs get_run_with_states inlines;
--   values past the budget are returned as {"$truncated": true, "bytes": N} (default 64 MiB).
-- * inline_limit_bytes: run inputs, task outputs and map elements larger than this are
--   stored by reference in pgflow.blobs (default 64 KiB; docs/large-values.md).
create table if not exists pgflow.settings (
  name text primary key
    check (name in ('max_payload_bytes', 'read_budget_bytes', 'inline_limit_bytes')),
  value bigint not null check (value between 1 and 268435455),
  updated_at timestamptz not null default pgflow._now()
);

-- The first install adopts a max_payload_bytes the owner had configured as the setting
-- pgflow.max_payload_bytes (`alter database ... set`), which earlier versions read.
insert into pgflow.settings (name, value)
select 'max_payload_bytes', least(greatest(coalesce(
  case when current_setting('pgflow.max_payload_bytes', true) ~ '^[0-9]{1,9}$'
    then current_setting('pgflow.max_payload_bytes', true)::bigint end, 16777216), 1),
  268435455)
union all
select 'read_budget_bytes', 67108864
union all
select 'inline_limit_bytes', 65536
on conflict (name) do nothing;
