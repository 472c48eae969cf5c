-- flow_input_schema(flow_slug): the JSON Schema stored with the flow for its run input (what
-- Client.start(slug) and `pgflow start` validate against before starting a run). NULL when
-- the flow has none (e.g. defined by pgflow's TypeScript SQL: its starts are not validated)
-- or no such flow is deployed (start_flow then raises PGF02). No locks.
create or replace function pgflow.flow_input_schema(flow_slug text)
returns jsonb
language sql
stable
security definer
set search_path = pg_catalog, pg_temp
as $$
  select f.input_schema from pgflow.flows f where f.flow_slug = flow_input_schema.flow_slug;
$$;
