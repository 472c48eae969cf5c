-- forget_blob_tombstones(store, run_ids, blob_ids): the external values (parallel arrays)
-- whose files or objects the caller deleted; their tombstones go. Returns how many.
create or replace function pgflow.forget_blob_tombstones(
  store text, run_ids uuid[], blob_ids uuid[]
)
returns int
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  n int;
begin
  delete from pgflow.blob_tombstones t
  using unnest(run_ids, blob_ids) as g(run_id, blob_id)
  where t.store = forget_blob_tombstones.store and t.run_id = g.run_id
    and t.blob_id = g.blob_id;
  get diagnostics n = row_count;
  return n;
end;
$$;
