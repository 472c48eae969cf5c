-- _ref(blob): the reference that stands for a stored value in the state rows:
-- {"$pgflow_ref": blob_id, "size": bytes of its JSON text, "sha256": hex, "store": name}.
-- The only way references are made, so a valid one always equals _ref of its blob row.
create or replace function pgflow._ref(blob pgflow.blobs)
returns jsonb
language sql
immutable
set search_path = pg_catalog, pg_temp
as $$
  select jsonb_build_object('$pgflow_ref', blob.blob_id, 'size', blob.size,
    'sha256', blob.sha256, 'store', blob.store);
$$;
