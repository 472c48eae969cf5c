-- Values stored by reference (docs/large-values.md): a run input, task output or map
-- element larger than the inline_limit_bytes setting is stored once, here or in an external
-- store, and the state rows hold a small reference in its place:
--   {"$pgflow_ref": "<blob uuid>", "size": <bytes of its JSON text>,
--    "sha256": "<hex digest of that text>", "store": "pg"}
-- A blob belongs to one run: its key is (run_id, blob_id), every read names both, and the
-- SQL accepts a reference only where it names a sealed blob of the same run. Blobs go with
-- their runs (prune_batch, delete_flow_and_data).
--
-- blobs: one row per sealed value, whatever the store ('pg': chunks in blob_chunks; any
-- other name: an external store the workers and clients reach, e.g. a shared directory).
create table if not exists pgflow.blobs (
  run_id uuid not null,
  blob_id uuid not null,
  store text not null check (store ~ '^[a-z][a-z0-9_]{0,31}$'),
  size bigint not null check (size >= 0),
  sha256 text not null check (sha256 ~ '^[0-9a-f]{64}$'),
  created_at timestamptz not null default pgflow._now(),
  primary key (run_id, blob_id)
);

-- blob_chunks: the bytes of the 'pg' store's values, UTF-8 JSON text cut into chunks of
-- 1 MiB (seq 0, 1, ...). Written before the blob is sealed, in the writer's transaction.
-- Stored out of line and uncompressed (STORAGE EXTERNAL): no compression CPU on the write
-- path, and reading a chunk never decompresses a megabyte.
create table if not exists pgflow.blob_chunks (
  run_id uuid not null,
  blob_id uuid not null,
  seq int not null check (seq >= 0),
  data bytea not null,
  primary key (run_id, blob_id, seq)
);

alter table pgflow.blob_chunks alter column data set storage external;

-- blob_tombstones: values of external stores whose runs were deleted. The database cannot
-- delete a file or an object; a worker holding that store deletes them and then the
-- tombstones (blob_tombstones / forget_blob_tombstones).
create table if not exists pgflow.blob_tombstones (
  store text not null,
  run_id uuid not null,
  blob_id uuid not null,
  deleted_at timestamptz not null default pgflow._now(),
  primary key (store, run_id, blob_id)
);
