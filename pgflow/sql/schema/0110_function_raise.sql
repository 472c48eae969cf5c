-- _raise(errcode, message, hint): raise a pgflow error. Used by every function so that
-- errors carry their own SQLSTATE (PGF01..PGF10, mapped to Python classes) and a hint.
create or replace function pgflow._raise(code text, message text, hint text default null)
returns void
language plpgsql
immutable
set search_path = ''
as $$
begin
  raise exception using errcode = code, message = message, hint = coalesce(hint, '');
end;
$$;

-- _check_option(where_, name, value, minimum): refuse an option below its minimum.
create or replace function pgflow._check_option(where_ text, name text, value int, minimum int)
returns void
language plpgsql
immutable
set search_path = ''
as $$
begin
  if value is not null and value < minimum then
    perform pgflow._raise('PGF03',
      format('%s: option %s must be >= %s, got %s', where_, name, minimum, value),
      format('Set %s to an integer >= %s.', name, minimum));
  end if;
end;
$$;

-- _check_slug(kind, slug): refuse an invalid slug with a message naming it.
create or replace function pgflow._check_slug(kind text, slug text)
returns void
language plpgsql
immutable
set search_path = ''
as $$
begin
  if not pgflow.is_valid_slug(slug) then
    perform pgflow._raise('PGF01',
      format('invalid %s slug %L', kind, slug),
      'A slug starts with a letter or _, continues with letters, digits or _, has at most '
      || '128 characters and is not "run" or "input".');
  end if;
end;
$$;

-- _max_payload_bytes(): the largest run input or task output accepted, in bytes (stored
-- size). Default 16 MiB; change it per database or role with
-- `alter database mydb set pgflow.max_payload_bytes = '67108864'`.
create or replace function pgflow._max_payload_bytes()
returns bigint
language plpgsql
stable
set search_path = ''
as $$
begin
  return coalesce(nullif(current_setting('pgflow.max_payload_bytes', true), '')::bigint,
    16777216);
end;
$$;
