-- _check_slug(kind, slug): refuse a slug that a new flow or step may not have, with a
-- message naming it (PGF01). New slugs follow pgflow 0.17: is_valid_slug, and no leading or
-- trailing underscore. create_flow and add_step call it only for a flow or step that does
-- not exist yet, so flows deployed under the older rule (`_legacy`) keep working; the table
-- constraints use is_valid_slug, which still accepts them. NULL is refused.
create or replace function pgflow._check_slug(kind text, slug text)
returns void
language plpgsql
immutable
set search_path = pg_catalog, pg_temp
as $$
begin
  if not pgflow.is_valid_slug(slug) or slug ~ '(^_|_$)' then
    perform pgflow._raise('PGF01',
      format('invalid %s slug %L', kind, slug),
      'A slug starts with a letter, continues with letters, digits or _, does not end with _, '
      || 'has at most 128 characters and is not "run" or "input".');
  end if;
end;
$$;
