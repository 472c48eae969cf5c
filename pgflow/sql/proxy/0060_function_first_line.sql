-- _first_line(message): the first line of a PL/Proxy error, without the
-- "PL/Proxy function name(n): " prefix, for messages that name a shard themselves.
create or replace function pgflow_proxy._first_line(message text)
returns text
language sql
immutable
set search_path = pg_catalog, pg_temp
as $$
  select regexp_replace(split_part(message, E'\n', 1), '^PL/Proxy function [^ ]*: ', '')
$$;
