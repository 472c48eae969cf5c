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

-- _utc_month(at, months): the start of the UTC month `months` after the one holding `at`
-- (0: that month's own start; negative: earlier). The history partitions' bounds (0047).
create or replace function pgflow._utc_month(at timestamptz, months int)
returns timestamptz
language sql
immutable
strict
parallel safe
set search_path = pg_catalog, pg_temp
as $$
  select (date_trunc('month', _utc_month.at, 'UTC') at time zone 'UTC'
    + make_interval(months => _utc_month.months)) at time zone 'UTC';
$$;

-- _uuid7_at(at, key): a UUIDv7-shaped id whose time is `at` (milliseconds) and whose other
-- bits come from md5(key): the same (at, key) always gives the same id, and the id sorts
-- (and is partitioned) with the runs started at `at`. Schedules derive their runs' ids from
-- it (start_scheduled); pgflow.keyed_run_id does the same in Python. NULL in, NULL out.
create or replace function pgflow._uuid7_at(at timestamptz, key text)
returns uuid
language sql
immutable
strict
parallel safe
set search_path = pg_catalog, pg_temp
as $$
  select encode(set_byte(set_byte(b, 6, 112 | (get_byte(b, 6) & 15)),
    8, 128 | (get_byte(b, 8) & 63)), 'hex')::uuid
  from (select substring(int8send(floor(extract(epoch from _uuid7_at.at) * 1000)::bigint)
      from 3) || substring(decode(md5(_uuid7_at.key), 'hex') from 1 for 10) as b) as x;
$$;
