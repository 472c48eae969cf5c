-- _store_value(run_id, value): store a JSON value of a run in the 'pg' store (its text in
-- 1 MiB chunks) and return its reference. Used for values that arrive inline but are larger
-- than the inline_limit_bytes setting (from SQL callers, or map elements cut out of a larger
-- array); pgflow's workers and clients store large values themselves, in chunks, without
-- ever building them as one jsonb parameter. The blob id is random.
create or replace function pgflow._store_value(run_id uuid, value jsonb)
returns jsonb
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
as $$
declare
  raw bytea := convert_to(value::text, 'UTF8');
  total bigint := octet_length(raw)::bigint;
  chunk constant int := 1048576;
  id uuid := gen_random_uuid();
  blob pgflow.blobs;
begin
  insert into pgflow.blob_chunks (run_id, blob_id, seq, data)
  select _store_value.run_id, id, g.n, substring(raw from g.n * chunk + 1 for chunk)
  from generate_series(0, ((total - 1) / chunk)::int) as g(n);
  insert into pgflow.blobs (run_id, blob_id, store, size, sha256)
  values (_store_value.run_id, id, 'pg', total, encode(sha256(raw), 'hex'))
  returning * into blob;
  return pgflow._ref(blob);
end;
$$;
