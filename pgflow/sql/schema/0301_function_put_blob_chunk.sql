-- put_blob_chunk(run_id, blob_id, seq, data): write one chunk (seq 0, 1, ...) of a value
-- being stored in the 'pg' store: its UTF-8 JSON text, cut in chunks of at most 64 MiB
-- (pgflow writes 1 MiB). Call seal_blob in the same transaction once every chunk is written;
-- chunks of a value never sealed go with their run. The run need not exist yet (a client
-- stores a large run input before start_flow, in one transaction).
-- * A sealed value cannot change, a chunk cannot be written twice (PGF15); NULL arguments
--   and bad sequence numbers are refused (PGF15).
-- Locks: inserts one row.
create or replace function pgflow.put_blob_chunk(run_id uuid, blob_id uuid, seq int, data bytea)
returns void
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
begin
  if run_id is null or blob_id is null or seq is null or seq < 0 or data is null
     or octet_length(data) > 67108864 then
    perform pgflow._raise('PGF15', format('put_blob_chunk(%s, %s, %s): every argument must be '
      || 'given, seq must be 0 or more and a chunk at most 64 MiB (got %s bytes)', run_id,
      blob_id, seq, octet_length(data)), 'Write the value''s JSON text in chunks numbered 0, 1, ...');
  end if;
  if exists (select 1 from pgflow.blobs b
             where b.run_id = put_blob_chunk.run_id and b.blob_id = put_blob_chunk.blob_id) then
    perform pgflow._raise('PGF15', format('stored value %s of run %s is sealed and cannot '
      || 'change', blob_id, run_id), 'Store a new value under a new blob id.');
  end if;
  insert into pgflow.blob_chunks as c (run_id, blob_id, seq, data)
  values (put_blob_chunk.run_id, put_blob_chunk.blob_id, put_blob_chunk.seq, put_blob_chunk.data)
  on conflict do nothing;
  if not found then
    perform pgflow._raise('PGF15', format('chunk %s of stored value %s of run %s is already '
      || 'written', seq, blob_id, run_id), 'Store a new value under a new blob id.');
  end if;
end;
$$;
