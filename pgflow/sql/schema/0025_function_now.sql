-- _now(): the time as every pgflow function sees it: the start of the current transaction,
-- exactly now(). Never NULL. Takes no lock.
-- It exists so that tests can move time: pgflow.testing replaces this function in a test
-- database (and only there) by one that adds an offset or returns a frozen instant, so
-- retries, backoff, start_delay and leases are tested without sleeping (docs/testing.md).
-- No function, default or check of the schema reads the clock any other way (a test
-- enforces it), except _uuid7, whose ids are ordered by wall-clock time.
-- Free in production: a SQL function whose body is one expression and that has no SET
-- clause is inlined by the planner, so every query that calls it runs pg_catalog.now()
-- itself (a SET clause would prevent inlining). That is why it alone has no fixed
-- search_path: its body names no table, type or operator, and its one function is
-- schema-qualified, so no search_path can change what it does.
create or replace function pgflow._now()
returns timestamptz
language sql
stable
parallel safe
as $$
  select pg_catalog.now()
$$;
