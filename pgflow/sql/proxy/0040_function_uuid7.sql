-- uuid7(): a time-ordered UUID (version 7), the kind of id a shard gives a run itself.
-- start_flow generates one in the proxy when the caller gives no run id, because the id
-- decides the shard (see shard_of). The same expression as pgflow._uuid7() on a shard.
create or replace function pgflow_proxy.uuid7()
returns uuid
language sql
volatile
set search_path = pg_catalog, pg_temp
as $$
  select encode(
    set_bit(set_bit(
      overlay(uuid_send(gen_random_uuid())
        placing substring(int8send((extract(epoch from clock_timestamp()) * 1000)::bigint) from 3)
        from 1 for 6),
      52, 1), 53, 1),
    'hex')::uuid;
$$;
