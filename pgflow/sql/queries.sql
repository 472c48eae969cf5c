-- Named runtime queries. Each block starts with "-- name: <name>", then an optional
-- one-line "-- description", then the SQL until the next "-- name:" line.
-- Values always go through driver parameters (%(name)s); Python refers to a query by name.

-- name: schema_lock
-- Serialise installers: a transaction-scoped advisory lock (key = the bytes of "pgflow").
select pg_advisory_xact_lock(123589402324855);

-- name: schema_migrations_create
-- Bootstrap the bookkeeping table outside the migrations, so the lock + record logic works
-- for the very first migration too. No parameters: runs as one multi-statement batch.
create schema if not exists pgflow;
create table if not exists pgflow.schema_migrations (
  id int primary key,
  name text not null,
  checksum text not null,
  applied_at timestamptz not null default now()
);

-- name: schema_migrations_exists
-- Whether the bookkeeping table exists (read-only; status() must not create anything).
select to_regclass('pgflow.schema_migrations') is not null as present;

-- name: schema_migrations_list
-- Every applied migration, oldest first.
select id, name, checksum, applied_at from pgflow.schema_migrations order by id;

-- name: schema_migrations_insert
-- Record a migration first, in the same transaction that applies it.
insert into pgflow.schema_migrations (id, name, checksum)
values (%(id)s, %(name)s, %(checksum)s);

-- name: schema_version
-- The highest applied migration id, or NULL when none is applied.
select max(id) as version from pgflow.schema_migrations;
