-- _any_order(): every shard once, starting at a random one: the order in which a read that
-- any shard can answer (a flow's definition is on every shard) tries them, so that such
-- reads spread over the shards and one shard that is down costs only a retry. PGF21 when
-- the proxy has no shards configured.
create or replace function pgflow_proxy._any_order()
returns setof int
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
as $$
declare
  n int := (select s.shard_count from pgflow_proxy.state s);
  first int;
begin
  if n is null then
    perform pgflow_proxy._shard_for(pgflow_proxy.uuid7());  -- raises PGF21
  end if;
  first := floor(random() * n)::int;
  return query select (first + i) % n from generate_series(0, n - 1) as i;
end;
$$;
