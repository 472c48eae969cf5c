-- SQL that the Alembic operations emit. Blocks are rendered with psycopg.sql: `{name}`
-- placeholders receive quoted literals (sql.Literal), because offline scripts
-- (`alembic upgrade --sql`) cannot carry bound parameters. Literal braces are doubled.

-- name: migration_recorded
-- The checksum recorded for one pgflow migration (no row: not applied yet).
select checksum from pgflow.schema_migrations where id = {id}

-- name: migration_guard
-- Offline scripts only: stop with a clear error when the migration is already applied.
do $$
begin
  if exists (select 1 from pgflow.schema_migrations where id = {id}) then
    raise exception 'pgflow migration % is already applied to this database', {filename}
      using hint = 'It was applied by `pgflow install` or an earlier run of this script. '
        || 'Mark it as done in Alembic with `alembic stamp ' || {revision} || '`.';
  end if;
end
$$

-- name: migration_record
-- Record a migration first, in the transaction that applies it (as pgflow install does).
insert into pgflow.schema_migrations (id, name, checksum) values ({id}, {name}, {checksum})

-- name: uninstall
-- Remove the whole pgflow schema: definitions, runs, functions and bookkeeping.
drop schema if exists pgflow cascade

-- name: remove_flow
-- Remove one flow, its definition and all its runs (an unknown slug is a no-op).
select pgflow.delete_flow_and_data({flow_slug})

-- name: flows_table_exists
-- Whether the pgflow schema is installed at all (autogenerate on a bare database).
select to_regclass('pgflow.flows') is not null
