-- _raise(errcode, message, hint): raise a pgflow error. Used by every function so that
-- errors carry their own SQLSTATE (PGF01..PGF11, mapped to Python classes) and a hint.
create or replace function pgflow._raise(code text, message text, hint text default null)
returns void
language plpgsql
immutable
set search_path = pg_catalog, pg_temp
as $$
begin
  raise exception using errcode = code, message = message, hint = coalesce(hint, '');
end;
$$;
