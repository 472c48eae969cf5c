-- _shard_failed(shard, message, detail): raise PGF20 "shard k of N (where) is unavailable" for a
-- call PL/Proxy could not make (the shard refused or dropped the connection, timed out).
-- * shard NULL (a call to every shard): each shard is asked (shard_status) and the message
--   names every one the proxy cannot reach.
-- * PGF20 counts as transient for pgflow's clients (Client.wait keeps waiting): runs on
--   that shard wait until it is back, runs on the other shards are not affected.
-- Errors a shard itself raised (unknown run, unknown flow, ...) never come here: the
-- routes re-raise them unchanged, with their own SQLSTATE.
create or replace function pgflow_proxy._shard_failed(
  shard int, message text, detail text default null
)
returns void
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
as $$
declare
  total int := (select s.shard_count from pgflow_proxy.state s);
  down text;
begin
  if shard is not null then
    down := format('shard %s of %s (%s)', shard, total,
      (select x.conninfo from pgflow_proxy.shards x where x.shard = _shard_failed.shard));
  else
    select string_agg(format('shard %s of %s (%s)', st.shard, total, st.conninfo), ', ')
    into down from pgflow_proxy.shard_status() st where not st.reachable;
  end if;
  raise exception using errcode = 'PGF20',
    message = format('%s unavailable: %s', coalesce(down || ' is', 'a shard is'),
      pgflow_proxy._first_line(message)),
    detail = coalesce(detail, ''),
    hint = 'Runs on that shard wait until it is back; runs on the other shards go on. Check '
      || 'that its server runs and that the proxy''s server can reach it '
      || '(`pgflow shards` lists every shard and whether the proxy reaches it).';
end;
$$;
