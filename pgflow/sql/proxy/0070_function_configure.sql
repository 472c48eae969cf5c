-- configure(conninfos, password, schema_version, proxy_version): point the proxy at its
-- shards; returns the number of PL/Proxy partitions. Called by `pgflow install --proxy`.
-- * Shard k (0-based, in the order given) is partition k. PL/Proxy wants a power-of-two
--   partition count P: P is the smallest power of two >= N, and partition i >= N points at
--   shard (i mod N) as padding. shard_of() only returns 0 .. N-1, so the padding is never
--   routed to, and PL/Proxy runs a RUN ON ALL call once per distinct connection string, so
--   no shard runs one twice. Example: 3 shards -> P = 4: p0 = shard 0, p1 = shard 1,
--   p2 = shard 2, p3 = shard 0 (padding).
-- * The partitions are the options of the foreign server pgflow_shards (PL/Proxy's SQL/MED
--   cluster). A password (one for every shard, NULL: none, e.g. ~/.pgpass on the proxy's
--   server) goes into the user mapping for PUBLIC, never into the server's options, which
--   every role can read.
-- * shard_count() is redefined to return N (shard_of folds it into every routed call).
-- * The number of shards is fixed once configured: a run's shard is a function of its id
--   and N (shard_of), so another N would look for existing runs on the wrong shards: PGF21.
--   Connection strings may change (a shard that moved to another server).
-- Locks: pgflow_proxy.state's row (one configuration at a time).
create or replace function pgflow_proxy.configure(
  conninfos text[], password text default null, schema_version int default null,
  proxy_version int default 1
)
returns int
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
as $$
declare
  n int := coalesce(array_length(conninfos, 1), 0);
  p int := 1;
  configured int;
  options text;
  mapping text := '';
begin
  select s.shard_count into configured from pgflow_proxy.state s for update;
  if n = 0 then
    raise exception using errcode = 'PGF21', message = 'a pgflow proxy needs at least one shard',
      hint = 'Pass each shard''s URL: pgflow install --proxy --shard URL --shard URL ...';
  end if;
  if configured is not null and configured <> n then
    raise exception using errcode = 'PGF21',
      message = format('this proxy routes runs to %s shard(s); %s were given', configured, n),
      hint = 'A run''s shard follows from its id and the number of shards, so another number '
        || 'would look for existing runs on the wrong shards. Pass the same shards in the same '
        || 'order (a shard''s URL may change when it moves); docs/sharding.md says how to grow.';
  end if;
  while p < n loop
    p := p * 2;
  end loop;
  select string_agg(format('%s p%s %L',
      case when exists (select 1 from pg_catalog.pg_foreign_server f
                        where f.srvname = 'pgflow_shards') then 'set' else '' end,
      i, conninfos[i % n + 1]), ', ' order by i)
  into options from generate_series(0, p - 1) as i;
  if exists (select 1 from pg_catalog.pg_foreign_server f where f.srvname = 'pgflow_shards') then
    execute format('alter server pgflow_shards options (%s)', options);
  else
    execute format('create server pgflow_shards foreign data wrapper plproxy options (%s)',
      options);
  end if;
  execute 'drop user mapping if exists for public server pgflow_shards';
  if password is not null then
    mapping := format(' options (password %L)', password);
  end if;
  execute format('create user mapping for public server pgflow_shards%s', mapping);
  execute 'grant usage on foreign server pgflow_shards to public';

  execute format('create or replace function pgflow_proxy.shard_count() returns int '
    || 'language sql immutable parallel safe as %L', format('select %s', n));
  delete from pgflow_proxy.shards;
  insert into pgflow_proxy.shards (shard, conninfo)
  select i - 1, conninfos[i] from generate_series(1, n) as i;
  insert into pgflow_proxy.state as s (shard_count, partitions, schema_version, proxy_version)
  values (n, p, configure.schema_version, configure.proxy_version)
  on conflict (singleton) do update set partitions = excluded.partitions,
    schema_version = excluded.schema_version, proxy_version = excluded.proxy_version,
    configured_at = now();
  return p;
end;
$$;
