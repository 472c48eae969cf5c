-- _is_ref(value): whether a value has the shape of a reference to a stored value: an object
-- with the reserved key "$pgflow_ref" (see 0042_tables_blobs.sql). It says nothing about
-- whether the reference is valid: _check_ref does. NULL in, false out.
create or replace function pgflow._is_ref(value jsonb)
returns boolean
language sql
immutable
set search_path = pg_catalog, pg_temp
as $$
  select coalesce(jsonb_typeof(value) = 'object' and value ? '$pgflow_ref', false);
$$;
