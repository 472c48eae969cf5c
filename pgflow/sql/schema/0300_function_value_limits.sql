-- value_limits(): the owner's limits on values, for workers and clients to decide before
-- writing: inline_limit_bytes (larger run inputs and outputs are stored by reference) and
-- max_payload_bytes (no run input or task output may be larger, however it is stored).
-- The database enforces both itself; callers read them only to save work.
create or replace function pgflow.value_limits()
returns table (inline_limit_bytes bigint, max_payload_bytes bigint)
language plpgsql
stable
security definer
set search_path = pg_catalog, pg_temp
as $$
begin
  return query select pgflow._inline_limit_bytes(), pgflow._max_payload_bytes();
end;
$$;
