-- _unref(run_id, value): the value itself, or, for a reference, the value it stands for,
-- read from the 'pg' store. NULL when a reference cannot be read here: invalid for this run,
-- kept in an external store (files or objects Postgres cannot reach), deleted out of band,
-- damaged, or too large for one jsonb value. Never raises: it runs inside completions,
-- where an error would refuse the report instead of failing the step that needs the value.
-- Used where SQL itself needs a value: a map's array, a condition's input.
create or replace function pgflow._unref(run_id uuid, value jsonb)
returns jsonb
language plpgsql
stable
set search_path = pg_catalog, pg_temp
as $$
declare
  blob pgflow.blobs;
  raw bytea;
  total bigint;
begin
  if not pgflow._is_ref(value) then
    return value;
  end if;
  if pgflow._check_ref(run_id, value) is not null then
    return null;
  end if;
  select * into blob from pgflow.blobs b
  where b.run_id = _unref.run_id and b.blob_id = (value ->> '$pgflow_ref')::uuid;
  if blob.store <> 'pg' or blob.size > pgflow._jsonb_limit_bytes() then
    return null;
  end if;
  select string_agg(c.data, ''::bytea order by c.seq), sum(octet_length(c.data))
  into raw, total
  from pgflow.blob_chunks c where c.run_id = blob.run_id and c.blob_id = blob.blob_id;
  if total is distinct from blob.size then
    return null;
  end if;
  begin
    return convert_from(raw, 'UTF8')::jsonb;
  exception when data_exception or program_limit_exceeded then
    return null;
  end;
end;
$$;
