-- Definition reads through the proxy: flow_input_schema(flow_slug), get_flow_shape(flow_slug)
-- and flow_checksum(flow_slug), answered by any shard the proxy reaches. Flows are deployed
-- to every shard, so any shard knows them; the shards are tried in _any_order(), and only
-- when none answers is PGF20 raised (naming the shards that are down). A shard's own
-- errors come back unchanged.

create or replace function pgflow_proxy.route_flow_input_schema(shard int, flow_slug text)
returns jsonb
language plproxy
as $$
  cluster 'pgflow_shards';
  run on shard;
  select pgflow.flow_input_schema(flow_slug) as route_flow_input_schema;
$$;

create or replace function pgflow.flow_input_schema(flow_slug text)
returns jsonb
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
as $$
declare
  state text;
  message text;
  detail text;
  hint text;
  shard int;
  failure text;
begin
  for shard in select pgflow_proxy._any_order() loop
    begin
      return pgflow_proxy.route_flow_input_schema(shard, flow_input_schema.flow_slug);
    exception when others then
      get stacked diagnostics state = returned_sqlstate, message = message_text,
        detail = pg_exception_detail, hint = pg_exception_hint;
      if not pgflow_proxy._unreachable(state, message) then
        perform pgflow_proxy._rethrow(shard, state, message, detail, hint);
      end if;
      failure := message;
    end;
  end loop;
  perform pgflow_proxy._shard_failed(null, failure);
end;
$$;

create or replace function pgflow_proxy.route_get_flow_shape(shard int, flow_slug text)
returns jsonb
language plproxy
as $$
  cluster 'pgflow_shards';
  run on shard;
  select pgflow.get_flow_shape(flow_slug) as route_get_flow_shape;
$$;

create or replace function pgflow.get_flow_shape(flow_slug text)
returns jsonb
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
as $$
declare
  state text;
  message text;
  detail text;
  hint text;
  shard int;
  failure text;
begin
  for shard in select pgflow_proxy._any_order() loop
    begin
      return pgflow_proxy.route_get_flow_shape(shard, get_flow_shape.flow_slug);
    exception when others then
      get stacked diagnostics state = returned_sqlstate, message = message_text,
        detail = pg_exception_detail, hint = pg_exception_hint;
      if not pgflow_proxy._unreachable(state, message) then
        perform pgflow_proxy._rethrow(shard, state, message, detail, hint);
      end if;
      failure := message;
    end;
  end loop;
  perform pgflow_proxy._shard_failed(null, failure);
end;
$$;

create or replace function pgflow_proxy.route_flow_checksum(shard int, flow_slug text)
returns text
language plproxy
as $$
  cluster 'pgflow_shards';
  run on shard;
  select pgflow.flow_checksum(flow_slug) as route_flow_checksum;
$$;

create or replace function pgflow.flow_checksum(flow_slug text)
returns text
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
as $$
declare
  state text;
  message text;
  detail text;
  hint text;
  shard int;
  failure text;
begin
  for shard in select pgflow_proxy._any_order() loop
    begin
      return pgflow_proxy.route_flow_checksum(shard, flow_checksum.flow_slug);
    exception when others then
      get stacked diagnostics state = returned_sqlstate, message = message_text,
        detail = pg_exception_detail, hint = pg_exception_hint;
      if not pgflow_proxy._unreachable(state, message) then
        perform pgflow_proxy._rethrow(shard, state, message, detail, hint);
      end if;
      failure := message;
    end;
  end loop;
  perform pgflow_proxy._shard_failed(null, failure);
end;
$$;
