-- _check_ref(run_id, value): NULL when `value` is a reference to a sealed stored value of
-- this run (exactly as _ref made it), else why not. A reference names its blob within its
-- run only: a value copied from another run, forged, or edited never passes, so no run can
-- make a worker or reader fetch another run's value. Reads one blobs row (primary key).
create or replace function pgflow._check_ref(run_id uuid, value jsonb)
returns text
language plpgsql
stable
set search_path = pg_catalog, pg_temp
as $$
declare
  id text := value ->> '$pgflow_ref';
  blob pgflow.blobs;
begin
  if id is null or id !~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' then
    return format('%s is not a reference: "$pgflow_ref" must be the id (a UUID) of a stored '
      || 'value', left(coalesce(value::text, 'NULL'), 200));
  end if;
  select * into blob from pgflow.blobs b
  where b.run_id = _check_ref.run_id and b.blob_id = id::uuid;
  if not found then
    return format('reference %s names no stored value of run %s', id, run_id);
  end if;
  if value is distinct from pgflow._ref(blob) then
    return format('reference %s does not match its stored value (%s)', left(value::text, 300),
      pgflow._ref(blob));
  end if;
  return null;
end;
$$;
