-- is_valid_slug(slug): the slug rules shared by flows and steps, mirrored by the Python DSL.
-- A slug starts with a letter or underscore, continues with letters, digits or underscores,
-- is at most 128 characters long, and is not one of the reserved words `run` and `input`
-- (they name the run itself and the flow input in handler bindings).
-- NULL is not a valid slug. Immutable, so it can back check constraints.
create or replace function pgflow.is_valid_slug(slug text)
returns boolean
language sql
immutable
set search_path = pg_catalog, pg_temp
as $$
  select slug is not null
    and length(slug) between 1 and 128
    and slug ~ '^[a-zA-Z_][a-zA-Z0-9_]*$'
    and slug not in ('run', 'input');
$$;
