-- seal_blob(run_id, blob_id, size, digest, store): finish storing a value of a run and
-- return its reference ({"$pgflow_ref": blob_id, "size", "sha256", "store"}), the only
-- form in which start_flow and complete_task(s) accept a stored value.
-- * store 'pg' (the default): its chunks (put_blob_chunk, same transaction) must be numbered
--   0..n-1 and hold exactly `size` bytes. Any other store name (a letter, then lower-case
--   letters, digits, _; at most 32): the bytes live outside Postgres, written there by the
--   caller first; no chunk may exist. The database records the value so that references to
--   it can be checked and it goes with its run (tombstoned for external stores).
-- * size over the max_payload_bytes setting: PGF08 (the same limit as inline values).
-- * digest: the hex SHA-256 of the JSON text (readers of external stores verify it);
--   checked for form only.
-- * Sealing the same value again returns the same reference; anything else about a sealed
--   blob id, or chunks that do not match: PGF15.
-- Locks: inserts one blobs row.
create or replace function pgflow.seal_blob(
  run_id uuid, blob_id uuid, size bigint, digest text, store text default 'pg'
)
returns jsonb
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  max_bytes bigint := pgflow._max_payload_bytes();
  n bigint;
  total bigint;
  last_seq int;
  blob pgflow.blobs;
begin
  if run_id is null or blob_id is null or size is null or size < 0
     or digest is null or digest !~ '^[0-9a-f]{64}$'
     or store is null or store !~ '^[a-z][a-z0-9_]{0,31}$' then
    perform pgflow._raise('PGF15', format('seal_blob(%s, %s, %s, %L, %L): every argument must '
      || 'be given, size 0 or more, digest 64 lower-case hex digits, store a lower-case name',
      run_id, blob_id, size, left(digest, 80), left(store, 40)),
      'Pass the value''s size and the hex SHA-256 of its JSON text.');
  end if;
  if size > max_bytes then
    perform pgflow._raise('PGF08', format('run %s: a value of %s bytes is over the limit of %s '
      || 'bytes (setting max_payload_bytes)', run_id, size, max_bytes),
      'Store less, or have the database owner raise the limit: '
      || 'select pgflow.set_setting(''max_payload_bytes'', N).');
  end if;
  select count(*), coalesce(sum(octet_length(c.data)), 0), max(c.seq)
  into n, total, last_seq
  from pgflow.blob_chunks c
  where c.run_id = seal_blob.run_id and c.blob_id = seal_blob.blob_id;
  if store = 'pg' and (total <> size or coalesce(last_seq, -1) + 1 <> n) then
    perform pgflow._raise('PGF15', format('stored value %s of run %s: its chunks hold %s bytes '
      || 'in %s chunks numbered up to %s, not %s bytes in chunks 0..n-1', blob_id, run_id,
      total, n, last_seq, size), 'Write every chunk (put_blob_chunk) in this transaction first.');
  elsif store <> 'pg' and n > 0 then
    perform pgflow._raise('PGF15', format('stored value %s of run %s has chunks in Postgres but '
      || 'is sealed for store %L', blob_id, run_id, store),
      'Seal it for store ''pg'', or store its bytes in the external store only.');
  end if;
  insert into pgflow.blobs as b (run_id, blob_id, store, size, sha256)
  values (seal_blob.run_id, seal_blob.blob_id, seal_blob.store, seal_blob.size, seal_blob.digest)
  on conflict do nothing
  returning * into blob;
  if not found then
    select * into blob from pgflow.blobs b
    where b.run_id = seal_blob.run_id and b.blob_id = seal_blob.blob_id;
    if (blob.store, blob.size, blob.sha256) is distinct from (store, size, digest) then
      perform pgflow._raise('PGF15', format('stored value %s of run %s is already sealed as %s',
        blob_id, run_id, pgflow._ref(blob)), 'Store a new value under a new blob id.');
    end if;
  end if;
  return pgflow._ref(blob);
end;
$$;
