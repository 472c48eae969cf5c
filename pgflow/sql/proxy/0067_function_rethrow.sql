-- _rethrow(shard, sqlstate, message, detail, hint): raise again an error caught around a
-- PL/Proxy call, as one database would have raised it.
-- * A call that did not reach its shard: PGF20 naming the shard (_shard_failed; shard NULL
--   for a call to every shard), with detail as its detail.
-- * An error of the shard (unknown run PGF07, unknown flow PGF02, ...): the same SQLSTATE,
--   message, detail and hint, without PL/Proxy's "route(n): [db] REMOTE ERROR: " and
--   "Remote hint: " prefixes, so clients see exactly what one database says.
create or replace function pgflow_proxy._rethrow(
  shard int, state text, message text, detail text, hint text
)
returns void
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
as $$
begin
  if pgflow_proxy._unreachable(state, message) then
    perform pgflow_proxy._shard_failed(shard, message, detail);
  end if;
  message := regexp_replace(message, '^.*?REMOTE [A-Z]+: ', '');
  hint := regexp_replace(coalesce(hint, ''), '^Remote hint: ', '');
  if coalesce(detail, '') = '' then
    raise exception using errcode = state, message = message, hint = hint;
  end if;
  raise exception using errcode = state, message = message, hint = hint,
    detail = regexp_replace(detail, '^Remote detail: ', '');
end;
$$;
