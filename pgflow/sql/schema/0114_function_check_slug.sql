-- _check_slug(kind, slug): refuse an invalid slug with a message naming it.
create or replace function pgflow._check_slug(kind text, slug text)
returns void
language plpgsql
immutable
set search_path = pg_catalog, pg_temp
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
