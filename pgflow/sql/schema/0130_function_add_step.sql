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
-- Validation errors: PGF01 invalid slug (new steps only), PGF02 unknown flow, PGF03 unknown
-- dependency or bad option, PGF05 invalid definition (map with several deps, bad mode,
-- pattern not an object, a new step slug equal to another one but for letter case).
-- Cost O(dependencies) for a step that exists (re-deploying n steps is O(n)); takes the
-- flow's lock like create_flow.
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
set search_path = pg_catalog, pg_temp
as $$
declare
  flow_status text;
  declared boolean;
  deps text[] := coalesce(deps_slugs, '{}');
  where_ text := format('step %L of flow %L', add_step.step_slug, add_step.flow_slug);
  new_shape jsonb;
  step_count int;
  result pgflow.steps;
begin
  perform pg_advisory_xact_lock(hashtext('pgflow.flow:' || add_step.flow_slug));
  -- not the declared shape itself: it is as large as the flow, and only new steps need it
  select f.status, f.declared_shape is not null into flow_status, declared
  from pgflow.flows f where f.flow_slug = add_step.flow_slug for update;
  if not found then
    perform pgflow._raise('PGF02', format('unknown flow %L (adding step %L)',
      add_step.flow_slug, add_step.step_slug), 'Call pgflow.create_flow first.');
  end if;
  -- new steps only: a deployed step keeps the slug it was created with (see _check_slug)
  if not exists (select 1 from pgflow.steps s where s.flow_slug = add_step.flow_slug
                 and s.step_slug = add_step.step_slug) then
    perform pgflow._check_slug('step', add_step.step_slug);
    perform pgflow._check_slug_case(add_step.flow_slug, add_step.step_slug);
  end if;
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
    perform pgflow._check_same_step(add_step.flow_slug, where_, new_shape);
  else
    select coalesce(max(s.step_index) + 1, 0) into step_count
    from pgflow.steps s where s.flow_slug = add_step.flow_slug;
    if declared then
      perform pgflow._check_declared_step(add_step.flow_slug, where_, new_shape, step_count);
    end if;
    insert into pgflow.steps (flow_slug, step_slug, step_index, step_type, deps_count,
      required_input_pattern, forbidden_input_pattern, when_unmet, when_exhausted)
    values (add_step.flow_slug, add_step.step_slug, step_count, coalesce(step_type, 'single'),
      cardinality(deps), required_input_pattern, forbidden_input_pattern,
      coalesce(when_unmet, 'skip'), coalesce(when_exhausted, 'fail'));
    insert into pgflow.deps (flow_slug, dep_slug, step_slug)
    select add_step.flow_slug, d, add_step.step_slug from unnest(deps) as d;
    if flow_status = 'defining' then
      update pgflow.flows f set status = 'ready'
      where f.flow_slug = add_step.flow_slug
        and step_count + 1 = jsonb_array_length(f.declared_shape -> 'steps');
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
set search_path = pg_catalog, pg_temp
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

-- _check_same_step(flow_slug, where_, new_shape): an existing step must keep its definition.
-- Compares with that step's row and dependencies only: O(dependencies), not O(steps).
create or replace function pgflow._check_same_step(flow_slug text, where_ text, new_shape jsonb)
returns void
language plpgsql
stable
set search_path = pg_catalog, pg_temp
as $$
declare
  old_shape jsonb;
begin
  select pgflow._step_shape(s.step_slug, s.step_type,
      array(select d.dep_slug from pgflow.deps d
            where d.flow_slug = s.flow_slug and d.step_slug = s.step_slug),
      s.required_input_pattern, s.forbidden_input_pattern, s.when_unmet, s.when_exhausted)
  into old_shape
  from pgflow.steps s
  where s.flow_slug = _check_same_step.flow_slug and s.step_slug = new_shape ->> 'step_slug';
  if old_shape <> new_shape then
    perform pgflow._raise('PGF04',
      format('%s already exists with a different definition: %s', where_,
        pgflow._shape_difference(jsonb_build_object('steps', jsonb_build_array(old_shape)),
                                 jsonb_build_object('steps', jsonb_build_array(new_shape)))),
      format('Flows are immutable. Use a new flow slug such as %L.', flow_slug || '_v2'));
  end if;
end;
$$;

-- _check_declared_step(flow_slug, where_, new_shape, position): with a declared shape, the
-- step added at `step_position` must be exactly the declared one.
create or replace function pgflow._check_declared_step(
  flow_slug text, where_ text, new_shape jsonb, step_position int
)
returns void
language plpgsql
stable
set search_path = pg_catalog, pg_temp
as $$
declare
  declared jsonb;
  step_total int;
  flow_checksum text;
begin
  select f.declared_shape -> 'steps' -> step_position,
         jsonb_array_length(f.declared_shape -> 'steps'), f.checksum
  into declared, step_total, flow_checksum
  from pgflow.flows f where f.flow_slug = _check_declared_step.flow_slug;
  if declared is null then
    perform pgflow._raise('PGF04',
      format('%s is not part of the flow''s declared shape (%s steps, checksum %s)', where_,
        step_total, flow_checksum),
      format('Flows are immutable. Use a new flow slug such as %L.', flow_slug || '_v2'));
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
