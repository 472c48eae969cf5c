-- apply_retention(max_runs): prune the finished runs of every flow that has a retention
-- (Flow(..., retention="30d")) once they finished longer than that ago, at most max_runs
-- runs in this call, flow by flow in slug order. Workers call it every few minutes, again
-- while it returns max_runs, each call its own short transaction.
-- * One caller at a time: a transaction-level advisory try-lock. A caller that does not get
--   it returns NULL at once (another worker is pruning); otherwise the number of runs deleted.
-- * Months of history whose every run is past its flow's retention are dropped whole first
--   (_drop_history_partitions), whatever max_runs says; the rest goes run by run.
-- * Live runs are never touched (see prune_batch). max_runs NULL or below 1 raises PGF08.
create or replace function pgflow.apply_retention(max_runs int default 500)
returns int
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  f record;
  budget int := apply_retention.max_runs;
  n int;
  total int := 0;
begin
  if budget is null or budget < 1 then
    perform pgflow._raise('PGF08', format('apply_retention: max_runs must be at least 1, got %s',
      coalesce(budget::text, 'NULL')), 'Pass e.g. 500.');
  end if;
  -- the two-key form: a lock space of its own, apart from the flows' one-key locks
  if not pg_try_advisory_xact_lock(hashtext('pgflow'), hashtext('retention')) then
    return null;
  end if;
  -- whole months first: a month of runs all past their flows' retention goes in one step
  select coalesce(sum(d.runs), 0)::int into total from pgflow._drop_history_partitions(null) d;
  for f in
    select x.flow_slug, x.retention from pgflow.flows x
    where x.retention is not null order by x.flow_slug
  loop
    select coalesce(sum(p.runs), 0)::int into n
    from pgflow.prune_batch(f.retention, f.flow_slug, null, budget) p;
    total := total + n;
    budget := budget - n;
    exit when budget <= 0;
  end loop;
  return total;
end;
$$;
