-- _check_slug_case(flow_slug, step_slug): refuse a new step whose slug equals one of the
-- flow's steps but for letter case (`Fetch` next to `fetch`), as pgflow 0.17 does (PGF05).
-- Called by add_step for steps that do not exist yet; flows deployed before the rule keep
-- their steps. One lookup in the steps_slug_folded index (O(log steps)). NULL slugs match
-- nothing.
create or replace function pgflow._check_slug_case(flow_slug text, step_slug text)
returns void
language plpgsql
stable
set search_path = pg_catalog, pg_temp
as $$
declare
  other text;
begin
  select s.step_slug into other from pgflow.steps s
  where s.flow_slug = _check_slug_case.flow_slug
    and lower(s.step_slug) = lower(_check_slug_case.step_slug)
    and s.step_slug <> _check_slug_case.step_slug
  limit 1;
  if other is not null then
    perform pgflow._raise('PGF05',
      format('step %L of flow %L: the flow already has a step %L; step slugs must differ in '
        || 'more than letter case', step_slug, flow_slug, other),
      'Give the new step a slug that differs from the others in more than letter case.');
  end if;
end;
$$;
