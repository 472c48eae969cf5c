-- set_schedules(flow_slug, schedules): make the flow's schedules exactly `schedules`, a JSON
-- array of {"name", "cron", "timezone", "input", "catch_up"} objects (what the compiler and
-- deploy emit). Returns one line per change ("schedule 'x' added", "... changed: cron ...",
-- "... removed"), none when nothing changed.
-- * A schedule whose definition is unchanged keeps its paused state and last tick; a changed
--   one keeps them too (a new cron applies from the last tick on). Removed ones are deleted.
-- * Unknown flow: PGF02. A malformed entry, a duplicate name or an unknown time zone: PGF03.
--   Cron syntax is checked by the Python side (pgflow-py's DSL) before SQL is written.
-- * Owner only (deploying is a schema change); locks the flow row so concurrent deploys of
--   one flow serialise.
create or replace function pgflow.set_schedules(flow_slug text, schedules jsonb)
returns text[]
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  slug text := set_schedules.flow_slug;
  entry jsonb;
  old pgflow.schedules;
  changes text[] := '{}'::text[];
  names text[] := '{}'::text[];
  entry_name text;
begin
  perform 1 from pgflow.flows f where f.flow_slug = slug for update;
  if not found then
    perform pgflow._raise('PGF02', format('flow %L is not deployed', slug),
      'Deploy the flow before its schedules (its compiled SQL does both, in order).');
  end if;
  if jsonb_typeof(schedules) is distinct from 'array' then
    perform pgflow._raise('PGF03',
      format('the schedules of flow %L must be a JSON array, got %s', slug,
        coalesce(jsonb_typeof(schedules), 'NULL')),
      'Pass [] to remove every schedule.');
  end if;
  for entry in select e from jsonb_array_elements(schedules) as a(e) loop
    entry_name := pgflow._check_schedule(slug, entry);
    if entry_name = any(names) then
      perform pgflow._raise('PGF03',
        format('flow %L has two schedules named %L', slug, entry_name),
        'Give each schedule of a flow its own name.');
    end if;
    names := names || entry_name;
    select * into old from pgflow.schedules s where s.flow_slug = slug and s.name = entry_name;
    if not found then
      insert into pgflow.schedules (flow_slug, name, cron, timezone, input, catch_up)
      values (slug, entry_name, entry ->> 'cron', coalesce(entry ->> 'timezone', 'UTC'),
        coalesce(entry -> 'input', 'null'), coalesce(entry ->> 'catch_up', 'latest'));
      changes := changes || format('schedule %L added (%s)', entry_name, entry ->> 'cron');
    elsif (old.cron, old.timezone, old.input, old.catch_up)
        is distinct from (entry ->> 'cron', coalesce(entry ->> 'timezone', 'UTC'),
          coalesce(entry -> 'input', 'null'), coalesce(entry ->> 'catch_up', 'latest')) then
      update pgflow.schedules s
      set cron = entry ->> 'cron', timezone = coalesce(entry ->> 'timezone', 'UTC'),
          input = coalesce(entry -> 'input', 'null'),
          catch_up = coalesce(entry ->> 'catch_up', 'latest'), updated_at = pgflow._now()
      where s.flow_slug = slug and s.name = entry_name;
      changes := changes || format('schedule %L changed', entry_name);
    end if;
  end loop;
  for old in
    delete from pgflow.schedules s where s.flow_slug = slug and s.name <> all(names) returning *
  loop
    changes := changes || format('schedule %L removed', old.name);
  end loop;
  return changes;
end;
$$;

-- _check_schedule(flow_slug, entry): validate one entry of set_schedules; return its name.
create or replace function pgflow._check_schedule(flow_slug text, entry jsonb)
returns text
language plpgsql
stable
set search_path = pg_catalog, pg_temp
as $$
declare
  where_ text := format('a schedule of flow %L', flow_slug);
begin
  if jsonb_typeof(entry) is distinct from 'object'
     or jsonb_typeof(entry -> 'name') is distinct from 'string'
     or jsonb_typeof(entry -> 'cron') is distinct from 'string' then
    perform pgflow._raise('PGF03',
      format('%s is malformed: %s', where_, left(coalesce(entry::text, 'NULL'), 200)),
      'Each schedule is {"name": ..., "cron": ..., "timezone": ..., "input": ..., '
        || '"catch_up": "latest"|"all"|"none"}.');
  end if;
  if not pgflow.is_valid_slug(entry ->> 'name') then
    perform pgflow._raise('PGF03',
      format('%s has an invalid name %L', where_, entry ->> 'name'),
      'Use letters, digits and _ (at most 128 characters), like a step slug.');
  end if;
  if coalesce(entry ->> 'catch_up', 'latest') not in ('latest', 'all', 'none') then
    perform pgflow._raise('PGF03',
      format('%s has catch_up %L', where_, entry ->> 'catch_up'),
      'catch_up is one of latest, all, none.');
  end if;
  if not exists (select 1 from pg_catalog.pg_timezone_names z
                 where z.name = coalesce(entry ->> 'timezone', 'UTC')) then
    perform pgflow._raise('PGF03',
      format('%s has an unknown time zone %L', where_, entry ->> 'timezone'),
      'Use an IANA time zone name such as UTC or Europe/Paris.');
  end if;
  return entry ->> 'name';
end;
$$;
