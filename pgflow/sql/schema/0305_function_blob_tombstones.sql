-- blob_tombstones(store, max_rows): values of an external store whose runs were deleted
-- (prune, retention, delete_flow_and_data), oldest first, at most max_rows. A worker
-- holding that store deletes their files or objects, then calls forget_blob_tombstones.
-- Reads only; two workers may get the same rows (deleting twice is harmless).
create or replace function pgflow.blob_tombstones(store text, max_rows int default 1000)
returns table (run_id uuid, blob_id uuid)
language plpgsql
stable
security definer
set search_path = pg_catalog, pg_temp
as $$
begin
  return query
  select t.run_id, t.blob_id from pgflow.blob_tombstones t
  where t.store = blob_tombstones.store
  order by t.deleted_at, t.run_id, t.blob_id
  limit greatest(coalesce(blob_tombstones.max_rows, 1000), 1);
end;
$$;
