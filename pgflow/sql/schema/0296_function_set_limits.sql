-- set_limits(flow_slug, limits): make the flow's concurrency and rate limits exactly
-- `limits`, a JSON array of {"step", "kind", "max", "per", "key"} objects (what the compiler
-- and deploy emit):
-- * step: a step slug, or null for the whole flow (concurrency only);
-- * kind: "concurrency" (at most max leased tasks at once) or "rate" (at most max claims per
--   `per` seconds, a step only);
-- * key: null, or a field of the run input: the limit then holds per distinct value.
-- Returns one line per change ("concurrency limit on step 'x' of flow 'f' added: 5",
-- "... changed: 5 -> 3", "... removed"), none when nothing changed. Rate buckets of a changed or removed rate are
-- reset (a missing bucket is full).
-- * Unknown flow: PGF02. A malformed entry, an unknown step, a duplicate, max < 1, per out of
--   1 second .. 366 days, a flow-wide rate: PGF03. Nothing changes on error.
-- * Owner only (deploying is a schema change). Takes the flow's limits lock, which claims of
--   the flow hold while they count, so no claim sees half of a change.
create or replace function pgflow.set_limits(flow_slug text, limits jsonb)
returns text[]
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  slug text := set_limits.flow_slug;
  entry jsonb;
  old pgflow.limits;
  new pgflow.limits;
  changes text[] := '{}'::text[];
  seen text[] := '{}'::text[];
begin
  perform 1 from pgflow.flows f where f.flow_slug = slug for update;
  if not found then
    perform pgflow._raise('PGF02', format('flow %L is not deployed', slug),
      'Deploy the flow before its limits (its compiled SQL does both, in order).');
  end if;
  if jsonb_typeof(limits) is distinct from 'array' then
    perform pgflow._raise('PGF03',
      format('the limits of flow %L must be a JSON array, got %s', slug,
        coalesce(jsonb_typeof(limits), 'NULL')),
      'Pass [] to remove every limit.');
  end if;
  perform pg_advisory_xact_lock(hashtext('pgflow.limits:' || slug));
  for entry in select e from jsonb_array_elements(limits) as a(e) loop
    new := pgflow._check_limit(slug, entry);
    if new.step_slug || '.' || new.kind = any(seen) then
      perform pgflow._raise('PGF03', format('flow %L has two %s limits on %s', slug,
        new.kind, pgflow._limit_scope(new)), 'Give each step (and the flow) at most one '
        || 'concurrency and one rate limit.');
    end if;
    seen := seen || (new.step_slug || '.' || new.kind);
    select * into old from pgflow.limits l
    where l.flow_slug = slug and l.step_slug = new.step_slug and l.kind = new.kind;
    if not found then
      insert into pgflow.limits (flow_slug, step_slug, kind, max_count, per, key)
      values (slug, new.step_slug, new.kind, new.max_count, new.per, new.key);
      changes := changes || format('%s limit on %s added: %s', new.kind,
        pgflow._limit_scope(new), pgflow._limit_text(new));
    elsif (old.max_count, old.per, old.key) is distinct from (new.max_count, new.per, new.key)
    then
      update pgflow.limits l set max_count = new.max_count, per = new.per, key = new.key
      where l.flow_slug = slug and l.step_slug = new.step_slug and l.kind = new.kind;
      delete from pgflow.rate_buckets b
      where b.flow_slug = slug and b.step_slug = new.step_slug;
      changes := changes || format('%s limit on %s changed: %s -> %s', new.kind,
        pgflow._limit_scope(new), pgflow._limit_text(old), pgflow._limit_text(new));
    end if;
  end loop;
  for old in
    delete from pgflow.limits l
    where l.flow_slug = slug and l.step_slug || '.' || l.kind <> all(seen) returning *
  loop
    if old.kind = 'rate' then
      delete from pgflow.rate_buckets b
      where b.flow_slug = slug and b.step_slug = old.step_slug;
    end if;
    changes := changes || format('%s limit on %s removed', old.kind,
      pgflow._limit_scope(old));
  end loop;
  return changes;
end;
$$;

-- _check_limit(flow_slug, entry): validate one entry of set_limits; return it as a row.
create or replace function pgflow._check_limit(flow_slug text, entry jsonb)
returns pgflow.limits
language plpgsql
stable
set search_path = pg_catalog, pg_temp
as $$
declare
  result pgflow.limits;
  where_ text;
begin
  if jsonb_typeof(entry) is distinct from 'object'
     or coalesce(jsonb_typeof(entry -> 'step'), 'null') not in ('string', 'null')
     or jsonb_typeof(entry -> 'kind') is distinct from 'string'
     or jsonb_typeof(entry -> 'max') is distinct from 'number'
     or coalesce(jsonb_typeof(entry -> 'per'), 'null') not in ('number', 'null')
     or coalesce(jsonb_typeof(entry -> 'key'), 'null') not in ('string', 'null') then
    perform pgflow._raise('PGF03', format('a limit of flow %L is malformed: %s', flow_slug,
      left(coalesce(entry::text, 'NULL'), 200)),
      'Each limit is {"step": slug or null, "kind": "concurrency"|"rate", "max": n, '
        || '"per": seconds (rate only), "key": input field or null}.');
  end if;
  result.flow_slug := flow_slug;
  result.step_slug := coalesce(entry ->> 'step', '');
  result.kind := entry ->> 'kind';
  where_ := format('the %s limit on %s', result.kind, pgflow._limit_scope(result));
  if result.kind not in ('concurrency', 'rate') then
    perform pgflow._raise('PGF03', format('a limit of flow %L has kind %L', flow_slug,
      result.kind), 'kind is "concurrency" or "rate".');
  end if;
  if result.step_slug <> '' and not exists (
    select 1 from pgflow.steps s
    where s.flow_slug = _check_limit.flow_slug and s.step_slug = result.step_slug) then
    perform pgflow._raise('PGF03', format('%s: flow %L has no such step', where_, flow_slug),
      'Name a step of the flow, or null for the whole flow.');
  end if;
  if result.kind = 'rate' and result.step_slug = '' then
    perform pgflow._raise('PGF03', format('%s: a rate limit applies to a step', where_),
      'Put the rate limit on the step that calls the rate-limited service.');
  end if;
  if (entry ->> 'max')::numeric not between 1 and 1000000
     or (entry ->> 'max')::numeric <> trunc((entry ->> 'max')::numeric) then
    perform pgflow._raise('PGF03', format('%s: max must be a whole number from 1 to '
      || '1000000, got %s', where_, entry -> 'max'), 'Use e.g. 5.');
  end if;
  result.max_count := (entry ->> 'max')::int;
  if (result.kind = 'rate') <> (entry ? 'per' and entry -> 'per' <> 'null') then
    perform pgflow._raise('PGF03', format('%s: "per" (seconds) is given for a rate and only '
      || 'for a rate', where_), 'A rate is {"kind": "rate", "max": 100, "per": 60}.');
  end if;
  if result.kind = 'rate' then
    if (entry ->> 'per')::numeric not between 1 and 31622400 then
      perform pgflow._raise('PGF03', format('%s: per must be from 1 second to 366 days, '
        || 'got %s seconds', where_, entry -> 'per'), 'Use e.g. 60 for "per minute".');
    end if;
    result.per := make_interval(secs => (entry ->> 'per')::float8);
  end if;
  result.key := entry ->> 'key';
  if result.key is not null and length(result.key) not between 1 and 128 then
    perform pgflow._raise('PGF03', format('%s: key must be a field name of 1 to 128 '
      || 'characters', where_), 'Use the name of a field of the flow input.');
  end if;
  return result;
end;
$$;

-- _limit_scope(limit): "step 'x'" or "the whole flow", for messages.
create or replace function pgflow._limit_scope(l pgflow.limits)
returns text
language sql
immutable
set search_path = pg_catalog, pg_temp
as $$
  select case when l.step_slug = '' then format('flow %L', l.flow_slug)
    else format('step %L of flow %L', l.step_slug, l.flow_slug) end
$$;

-- _limit_text(limit): "5", "100 per 60 s", with " per customer_id" when keyed.
create or replace function pgflow._limit_text(l pgflow.limits)
returns text
language sql
immutable
set search_path = pg_catalog, pg_temp
as $$
  select l.max_count::text
    || case when l.per is not null
         then format(' per %s s', extract(epoch from l.per)::bigint) else '' end
    || case when l.key is not null then format(' per %s', l.key) else '' end
$$;
