-- The test clock of pgflow.testing (docs/testing.md). Never part of the schema that
-- `pgflow install` builds: pgflow.testing runs this file in a test database only, as the
-- database owner, when a test first uses the clock. Idempotent.
--
-- pgflow.test_clock holds one row: an offset added to now(), or a frozen instant. It is
-- readable and writable by its owner only.
-- pgflow._now() is replaced by a version that reads that row, so every pgflow function,
-- column default and connection of this database (a worker's pool included) sees the moved
-- clock from its next statement on: replacing a function invalidates the cached plans that
-- inlined the previous version. Within one statement the clock does not move (STABLE).
-- SECURITY DEFINER so that it reads the row whoever calls it (the row is not secret).
create table if not exists pgflow.test_clock (
  only_row boolean primary key default true check (only_row),
  offset_by interval not null default interval '0',
  frozen_at timestamptz
);

insert into pgflow.test_clock (only_row) values (true) on conflict (only_row) do nothing;

create or replace function pgflow._now()
returns timestamptz
language plpgsql
stable
security definer
set search_path = pg_catalog, pg_temp
as $$
begin
  return coalesce(
    (select coalesce(c.frozen_at, now() + c.offset_by) from pgflow.test_clock c), now());
end;
$$;
