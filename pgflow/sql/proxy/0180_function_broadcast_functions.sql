-- broadcast_functions(): the names of the pgflow functions that change what every shard
-- holds: definitions (what compiled flow SQL calls), schedules, limits, settings, pruning.
-- Through the proxy each runs on every shard (RUN ON ALL, see mirror_functions), so
-- `psql -f compiled_flow.sql` (or an Alembic revision) applied to the proxy deploys to all.
create or replace function pgflow_proxy.broadcast_functions()
returns text[]
language sql
immutable
set search_path = pg_catalog, pg_temp
as $$
  select array['create_flow', 'add_step', 'set_schedules', 'set_limits', 'pause_schedules',
    'delete_flow_and_data', 'prune', 'set_setting']
$$;
