-- _unreachable(sqlstate, message): whether a failed PL/Proxy call failed because its shard
-- is down or going away, rather than in the shard's own logic:
-- * PL/Proxy's own errors on the way (connection refused or lost, timed out): XX000
--   without "REMOTE" in the message;
-- * the shard's session ended under the call: admin or crash shutdown and cannot-connect-
--   now (57P01..57P03, "REMOTE FATAL"), a connection failure (class 08).
-- Every other error of the shard (unknown run, bad input, ...) keeps its SQLSTATE.
-- _unsent(sqlstate, message): of those, whether the shard certainly did not carry the call
-- out, so that another shard may be asked: the connection failed before the query was
-- sent ("[db] PQconnectStart: ..." / "[db] PQconnectPoll: ..."), or the shard's session
-- was terminated (a FATAL 57P0x ends the session without committing anything of the call).
-- A connection lost after the query was sent is unreachable but not unsent: the call may
-- have committed just before.
create or replace function pgflow_proxy._unreachable(state text, message text)
returns boolean
language sql
immutable
set search_path = pg_catalog, pg_temp
as $$
  select (state = 'XX000' and message not like '%REMOTE %')
    or state in ('57P01', '57P02', '57P03') or state like '08%'
$$;

create or replace function pgflow_proxy._unsent(state text, message text)
returns boolean
language sql
immutable
set search_path = pg_catalog, pg_temp
as $$
  select (state = 'XX000' and message not like '%REMOTE %'
      and (message like '%] PQconnectPoll: %' or message like '%] PQconnectStart: %'))
    or state in ('57P01', '57P02', '57P03')
$$;
