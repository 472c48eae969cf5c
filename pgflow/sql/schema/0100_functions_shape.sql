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
set search_path = pg_catalog, pg_temp
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
set search_path = pg_catalog, pg_temp
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
set search_path = pg_catalog, pg_temp
as $$
  select encode(sha256(convert_to(shape::text, 'UTF8')), 'hex');
$$;

-- flow_checksum(flow_slug): checksum of the flow as defined in the tables right now.
create or replace function pgflow.flow_checksum(flow_slug text)
returns text
language sql
stable
security definer
set search_path = pg_catalog, pg_temp
as $$
  select pgflow.shape_checksum(pgflow.get_flow_shape(flow_slug));
$$;

-- _shape_difference(old, new): a readable sentence naming the first difference between two
-- shapes, or NULL when they are equal.
create or replace function pgflow._shape_difference(old_shape jsonb, new_shape jsonb)
returns text
language plpgsql
immutable
set search_path = pg_catalog, pg_temp
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
