-- _expire_leases(flow_slugs, max_tasks): tasks whose lease ran out (worker died or hung)
-- count as a failed attempt: re-queued with backoff, or failed for good when exhausted.
-- NULL flow_slugs means every flow. Returns how many leases expired.
create or replace function pgflow._expire_leases(flow_slugs text[], max_tasks int)
returns int
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
-- the expired leases are found through step_tasks_leased even on a partition analysed
-- empty (start_flow says why); claim_tasks' own setting does not cover a plan that
-- sweep_expired_tasks made first in the session
set enable_seqscan = off
as $$
declare
  t record;
  n int := 0;
begin
  for t in
    select x.run_id, x.step_slug, x.task_index, x.attempts_count, x.leased_until, x.started_at
    from pgflow.step_tasks x
    where x.status = 'started' and x.leased_until < pgflow._now()
      and (flow_slugs is null or x.flow_slug = any(flow_slugs))
    order by x.leased_until
    limit max_tasks
    for update skip locked
  loop
    perform pgflow._fail_task(t.run_id, t.step_slug, t.task_index, t.attempts_count,
      format('lease expired: attempt %s was not reported within its timeout of %s s',
        t.attempts_count, round(extract(epoch from t.leased_until - t.started_at))),
      'LeaseExpired', null);
    n := n + 1;
  end loop;
  return n;
end;
$$;

-- sweep_expired_tasks(): expire leases of every flow, for runs that no worker polls.
-- Workers do this inside claim_tasks; schedule this only if you want it without workers.
create or replace function pgflow.sweep_expired_tasks()
returns int
language sql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
  select pgflow._expire_leases(null, 1000000);
$$;
