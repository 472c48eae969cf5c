-- read_blob(run_id, blob_id, from_seq, max_chunks): up to max_chunks chunks (seq, data) of a
-- value of the 'pg' store, from chunk from_seq on, in order. Readers call it again from the
-- next seq until they hold `size` bytes, so no call returns more than a few MiB.
-- * The blob must be a sealed value of that run (a reference names both; one copied into
--   another run finds nothing there). Unknown, or kept in another store: PGF15.
-- * Chunks deleted out of band come back missing; readers compare sizes and SHA-256.
create or replace function pgflow.read_blob(
  run_id uuid, blob_id uuid, from_seq int default 0, max_chunks int default 4
)
returns table (seq int, data bytea)
language plpgsql
stable
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  blob_store text;
begin
  select b.store into blob_store from pgflow.blobs b
  where b.run_id = read_blob.run_id and b.blob_id = read_blob.blob_id;
  if blob_store is null then
    perform pgflow._raise('PGF15', format('run %s has no stored value %s (its run was deleted, '
      || 'or it was never stored)', run_id, blob_id),
      'Check the run id; values are deleted with their runs (prune, retention, '
      || 'delete_flow_and_data).');
  elsif blob_store <> 'pg' then
    perform pgflow._raise('PGF15', format('stored value %s of run %s is kept in store %L, not in '
      || 'Postgres', blob_id, run_id, blob_store),
      format('Read it from that store (configure a store named %L).', blob_store));
  end if;
  return query
  select c.seq, c.data from pgflow.blob_chunks c
  where c.run_id = read_blob.run_id and c.blob_id = read_blob.blob_id
    and c.seq >= coalesce(read_blob.from_seq, 0)
  order by c.seq
  limit greatest(coalesce(read_blob.max_chunks, 4), 1);
end;
$$;
