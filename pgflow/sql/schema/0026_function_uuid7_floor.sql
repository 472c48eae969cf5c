-- _uuid7_floor(at): the smallest UUIDv7 of the millisecond `at` (its 48-bit Unix
-- milliseconds, then zero bits): where the time-ordered run ids of that instant begin. The
-- runtime tables are partitioned by run id at these bounds (0047). NULL in, NULL out;
-- reads no clock and takes no lock.
create or replace function pgflow._uuid7_floor(at timestamptz)
returns uuid
language sql
immutable
strict
parallel safe
set search_path = pg_catalog, pg_temp
as $$
  select encode(
    substring(int8send(floor(extract(epoch from _uuid7_floor.at) * 1000)::bigint) from 3)
      || decode('00000000000000000000', 'hex'),
    'hex')::uuid;
$$;
