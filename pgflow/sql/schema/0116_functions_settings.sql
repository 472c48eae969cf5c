-- Settings: protective limits stored in pgflow.settings, which only the database owner can
-- write. Callers (pgflow_worker, pgflow_reader, anyone granted a function) can read them
-- through the functions but cannot change them for their session or for anyone else.

-- _setting(name): the value of a setting. A missing row (deleted by hand) falls back to the
-- default, so a broken table never disables a limit. plpgsql, not SQL: it runs on every
-- start and completion, and before PostgreSQL 18 a SQL function with a SET clause plans its
-- query on every call; plpgsql keeps the plan.
create or replace function pgflow._setting(name text)
returns bigint
language plpgsql
stable
set search_path = pg_catalog, pg_temp
as $$
begin
  return coalesce(
    (select s.value from pgflow.settings s where s.name = _setting.name),
    case _setting.name when 'max_payload_bytes' then 16777216
                       when 'read_budget_bytes' then 67108864
                       when 'inline_limit_bytes' then 65536 end);
end;
$$;

-- _max_payload_bytes(): the largest run input or task output accepted, in bytes.
create or replace function pgflow._max_payload_bytes()
returns bigint
language plpgsql
stable
set search_path = pg_catalog, pg_temp
as $$
begin
  return pgflow._setting('max_payload_bytes');
end;
$$;

-- _inline_limit_bytes(): run inputs, task outputs and map elements larger than this are
-- stored by reference (pgflow.blobs), not inline in the state rows.
create or replace function pgflow._inline_limit_bytes()
returns bigint
language plpgsql
stable
set search_path = pg_catalog, pg_temp
as $$
begin
  return pgflow._setting('inline_limit_bytes');
end;
$$;

-- _jsonb_limit_bytes(): the most a task input or an aggregated output may hold. Postgres
-- refuses a jsonb value over 268435455 bytes (SQLSTATE 54000); one MiB is kept for keys.
create or replace function pgflow._jsonb_limit_bytes()
returns bigint
language sql
immutable
set search_path = pg_catalog, pg_temp
as $$
  select 267386880::bigint;
$$;

-- set_setting(name, value): change a limit. Executable by the schema owner only (no grant
-- to any pgflow role); unknown names and out-of-range values are refused (PGF03).
-- inline_limit_bytes (values larger than this are stored by reference, docs/large-values.md)
-- is at least 1024, so a reference is always smaller than the values it stands for.
create or replace function pgflow.set_setting(name text, value bigint)
returns pgflow.settings
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
as $$
declare
  result pgflow.settings;
  low int := case when name = 'inline_limit_bytes' then 1024 else 1 end;
begin
  if name is null
     or name not in ('max_payload_bytes', 'read_budget_bytes', 'inline_limit_bytes') then
    perform pgflow._raise('PGF03', format('unknown pgflow setting %L', name),
      'Settings are max_payload_bytes, read_budget_bytes and inline_limit_bytes.');
  end if;
  if value is null or value < low or value > 268435455 then
    perform pgflow._raise('PGF03',
      format('pgflow setting %s must be between %s and 268435455 bytes, got %s', name, low,
        value),
      'Postgres cannot hold a jsonb value over 268435455 bytes.');
  end if;
  insert into pgflow.settings as s (name, value) values (set_setting.name, set_setting.value)
  on conflict on constraint settings_pkey
  do update set value = excluded.value, updated_at = pgflow._now()
  returning * into result;
  return result;
end;
$$;
