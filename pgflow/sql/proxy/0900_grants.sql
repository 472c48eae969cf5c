-- Privileges on the proxy. The public functions (schema pgflow) run as their caller, and
-- PL/Proxy connects to each shard as the caller too (unless a shard's connection string
-- names a user): the shards' own roles and grants (pgflow_worker, pgflow_reader) decide what
-- a caller may do. Configuration stays with the installing superuser.
grant usage on schema pgflow, pgflow_proxy to public;
grant select on pgflow_proxy.state, pgflow_proxy.shards to public;
revoke all on function pgflow_proxy.configure(text[], text, int, int) from public;
revoke all on function pgflow_proxy.mirror_functions(jsonb) from public;
