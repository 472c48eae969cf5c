-- _check_option(where_, name, value, minimum): refuse an option below its minimum.
create or replace function pgflow._check_option(where_ text, name text, value int, minimum int)
returns void
language plpgsql
immutable
set search_path = pg_catalog, pg_temp
as $$
begin
  if value is not null and value < minimum then
    perform pgflow._raise('PGF03',
      format('%s: option %s must be >= %s, got %s', where_, name, minimum, value),
      format('Set %s to an integer >= %s.', name, minimum));
  end if;
end;
$$;
