-- shard_count(): the number of shards N, a constant: configure() redefines this function
-- with N in its body (NULL until then), so that shard_of() below folds it at plan time.
-- shard_of(run_id): the shard (0 .. N-1) that holds a run: the first 28 bits of
-- md5(run_id::text), as a number, modulo N.
-- * md5 spreads any kind of id evenly (random UUIDv4/v7 bits, or hand-made ids), and is the
--   same on every PostgreSQL version and platform, so the proxy can be upgraded or moved.
-- * The result is below N, and N is at most the partition count P (a power of two, see
--   configure): PL/Proxy's `hash & (P - 1)` leaves it unchanged, so shard k is partition k.
-- * NULL run id, or a proxy not configured yet: NULL (callers raise, see _shard_for).
-- * It runs on every routed call, so both are one-expression SQL functions without a SET
--   clause, which the planner inlines (a SET clause would prevent it, and cost a settings
--   save and restore per call): that is why they alone have no fixed search_path. Their
--   bodies name only schema-qualified functions and operators, and SQL-standard type
--   names (varchar, bit, integer), which always mean pg_catalog's.
-- Changing N would move existing runs to other shards: configure refuses it.
do $$
begin
  if to_regprocedure('pgflow_proxy.shard_count()') is null then
    create function pgflow_proxy.shard_count()
    returns int
    language sql
    immutable
    parallel safe
    as 'select null::int';
  end if;
end;
$$;

create or replace function pgflow_proxy.shard_of(run_id uuid)
returns int
language sql
immutable
parallel safe
as $$
  select cast(cast('x' operator(pg_catalog.||)
      pg_catalog.left(pg_catalog.md5(cast(run_id as varchar)), 7) as bit(28)) as integer)
    operator(pg_catalog.%) pgflow_proxy.shard_count()
$$;
