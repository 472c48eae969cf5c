-- _truncated(bytes): the marker that stands in for a value too big to return here.
create or replace function pgflow._truncated(bytes bigint)
returns jsonb
language sql
immutable
set search_path = pg_catalog, pg_temp
as $$
  select jsonb_build_object('$truncated', true, 'bytes', bytes);
$$;
