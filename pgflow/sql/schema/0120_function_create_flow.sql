-- create_flow(flow_slug, max_attempts, base_delay, timeout, shape, checksum, input_schema,
--             retention, priority)
--
-- Parameters and defaults follow TypeScript pgflow; `shape`, `checksum`, `input_schema` and
-- `retention` are optional extras emitted by pgflow-py's compiler. input_schema (a JSON
-- Schema object or boolean) and retention (a positive interval) are tunables like the
-- options: not part of the shape, stored with the flow, NULL meaning none.
-- * New slug: inserts the flow. With a shape that has steps it stays 'defining' until
--   add_step has produced exactly that shape (so SQL applied statement by statement never
--   leaves a usable half-defined flow).
-- * Existing slug, no shape: updates the runtime options (pgflow-compatible re-apply).
-- * Existing slug, same shape: updates the runtime options (a NOTICE names each change).
-- * Existing slug, different shape: raises PGF04 before changing anything, naming both
--   checksums and the first difference.
-- A new slug must pass _check_slug (PGF01); an existing flow is never refused for its slug.
-- NULL options mean the defaults (3 attempts, 1 s base delay, 60 s timeout, no input schema,
-- no retention, priority 0); an invalid input_schema or retention, or a priority outside
-- -100..100, raises PGF03. priority (a tunable) is the default priority of the flow's runs.
-- Locks the flow row, so concurrent deployers of one slug serialise.
-- Refreshes the planner statistics of the definition tables when many rows changed since
-- they were last analysed, so the add_step calls that follow look steps up by primary key
-- (re-deploying n steps then costs O(n), not O(n^2), right after a large first deploy).
create or replace function pgflow.create_flow(
  flow_slug text,
  max_attempts int default null,
  base_delay int default null,
  timeout int default null,
  shape jsonb default null,
  checksum text default null,
  input_schema jsonb default null,
  retention interval default null,
  priority int default null
)
returns pgflow.flows
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  slug text := create_flow.flow_slug;
  new_checksum text;
  existing pgflow.flows;
  existing_checksum text;
  result pgflow.flows;
begin
  -- a deployed flow keeps the slug it was created with (older rules allowed `_x`)
  if not exists (select 1 from pgflow.flows f where f.flow_slug = slug) then
    perform pgflow._check_slug('flow', slug);
  end if;
  perform pgflow._check_option(format('flow %L', slug), 'max_attempts', max_attempts, 1);
  perform pgflow._check_option(format('flow %L', slug), 'base_delay', base_delay, 0);
  perform pgflow._check_option(format('flow %L', slug), 'timeout', timeout, 1);
  if jsonb_typeof(input_schema) not in ('object', 'boolean') then
    perform pgflow._raise('PGF03', format(
      'flow %L: input_schema must be a JSON Schema (an object or a boolean), got a JSON %s',
      slug, jsonb_typeof(input_schema)),
      'Pass the JSON Schema of the run input, e.g. the one pydantic''s model_json_schema() '
      || 'returns, or NULL for none.');
  end if;
  if retention <= interval '0' then
    perform pgflow._raise('PGF03', format(
      'flow %L: retention must be a positive interval, got %s', slug, retention),
      'Pass e.g. retention => ''30 days'', or NULL to keep finished runs until pruned.');
  end if;
  if create_flow.priority not between -100 and 100 then
    perform pgflow._raise('PGF03', format(
      'flow %L: priority must be from -100 to 100, got %s', slug, create_flow.priority),
      'Pass e.g. priority => 10 (higher first), or NULL for the default 0.');
  end if;
  if shape is not null then
    new_checksum := pgflow._check_declared_shape(slug, shape, create_flow.checksum);
  end if;

  perform pg_advisory_xact_lock(pg_catalog.hashtext('pgflow.flow:' || slug));
  perform pgflow._refresh_definition_stats();
  select * into existing from pgflow.flows f where f.flow_slug = slug for update;
  if not found then
    insert into pgflow.flows as f (
      flow_slug, opt_max_attempts, opt_base_delay, opt_timeout, status, declared_shape, checksum,
      input_schema, retention, priority
    ) values (
      slug, coalesce(max_attempts, 3), coalesce(base_delay, 1), coalesce(timeout, 60),
      case when jsonb_array_length(coalesce(shape -> 'steps', '[]')) > 0
        then 'defining' else 'ready' end,
      shape, new_checksum, create_flow.input_schema, create_flow.retention,
      coalesce(create_flow.priority, 0)
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
  return pgflow._update_flow_options(existing, max_attempts, base_delay, timeout,
    create_flow.input_schema, create_flow.retention, create_flow.priority);
end;
$$;

-- _check_declared_shape(slug, shape, checksum): validate a declared shape and return its
-- checksum. A declared checksum that differs from the shape's means the SQL was edited by
-- hand or produced by a faulty generator (PGF09).
create or replace function pgflow._check_declared_shape(slug text, shape jsonb, checksum text)
returns text
language plpgsql
immutable
set search_path = pg_catalog, pg_temp
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

-- _update_flow_options(flow, ...): apply changed runtime options and tunables, announcing
-- each change (an input schema's change is announced, not printed).
create or replace function pgflow._update_flow_options(
  existing pgflow.flows, max_attempts int, base_delay int, timeout int, input_schema jsonb,
  retention interval, priority int default null
)
returns pgflow.flows
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
as $$
declare
  result pgflow.flows;
begin
  update pgflow.flows f set
    opt_max_attempts = coalesce(max_attempts, 3),
    opt_base_delay = coalesce(base_delay, 1),
    opt_timeout = coalesce(timeout, 60),
    input_schema = _update_flow_options.input_schema,
    retention = _update_flow_options.retention,
    priority = coalesce(_update_flow_options.priority, 0)
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
  if existing.retention is distinct from result.retention then
    raise notice 'flow %: retention updated (% -> %)', quote_literal(existing.flow_slug),
      coalesce(existing.retention::text, 'none'), coalesce(result.retention::text, 'none');
  end if;
  if existing.priority is distinct from result.priority then
    raise notice 'flow %: priority updated (% -> %)', quote_literal(existing.flow_slug),
      existing.priority, result.priority;
  end if;
  if existing.input_schema is distinct from result.input_schema then
    raise notice 'flow %: input schema %', quote_literal(existing.flow_slug),
      case when result.input_schema is null then 'removed' else 'updated' end;
  end if;
  return result;
end;
$$;

-- _refresh_definition_stats(): ANALYZE steps and deps when more than 500 rows of steps
-- changed since their last analysis (autovacuum may not have run yet). Runs as the owner.
create or replace function pgflow._refresh_definition_stats()
returns void
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
as $$
begin
  if coalesce((select st.n_mod_since_analyze from pg_catalog.pg_stat_user_tables st
               where st.relid = 'pgflow.steps'::regclass), 0) > 500 then
    analyze pgflow.steps;
    analyze pgflow.deps;
  end if;
end;
$$;
