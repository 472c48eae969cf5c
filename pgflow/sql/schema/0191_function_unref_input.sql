-- _unref_input(run_id, input, root): a step's input with the references SQL must see
-- through replaced by their values, for evaluating a condition: the run input itself for a
-- root step; otherwise each dependency's output and, for a map dependency's list, each
-- element. NULL when one of them cannot be read here (see _unref) or they add up to more
-- than one jsonb value can hold.
create or replace function pgflow._unref_input(run_id uuid, input jsonb, root boolean)
returns jsonb
language plpgsql
stable
set search_path = pg_catalog, pg_temp
as $$
declare
  dep record;
  value jsonb;
  missing boolean;
  result jsonb := '{}'::jsonb;
begin
  if root or jsonb_typeof(input) is distinct from 'object' then
    return pgflow._unref(run_id, input);
  end if;
  for dep in select e.key, e.value from jsonb_each(input) as e loop
    value := pgflow._unref(run_id, dep.value);
    if value is null then
      return null;
    end if;
    if jsonb_typeof(value) = 'array'
       and jsonb_path_exists(value, '$[*] ? (exists (@."$pgflow_ref"))') then
      select jsonb_agg(u.value order by u.n), bool_or(u.value is null) into value, missing
      from (select a.n, pgflow._unref(_unref_input.run_id, a.value) as value
            from jsonb_array_elements(value) with ordinality as a(value, n)) as u;
      if missing then
        return null;
      end if;
    end if;
    result := result || jsonb_build_object(dep.key, value);
  end loop;
  return result;
exception when program_limit_exceeded then
  return null;  -- more than one jsonb value can hold
end;
$$;
