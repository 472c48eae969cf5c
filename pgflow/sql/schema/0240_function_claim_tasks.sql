-- claim_tasks(flow_slugs, worker_id, max_tasks): lease up to max_tasks claimable tasks of
-- the given flows to a worker, in one round trip.
-- * Claimable: status 'queued' and available_at <= now(); taken in priority_at order
--   (fair: a large map interleaves with later work) with FOR UPDATE SKIP LOCKED, so a
--   task is never leased to two workers at once.
-- * Each claimed task: attempts_count + 1, leased until now() + its effective timeout
--   (step's, else flow's), worker_id recorded. Registration is not required.
-- * Expired leases of these flows are handled first (re-queued, or failed when exhausted),
--   so correctness never depends on a cron job.
-- * input: the run input for a root step, {dep_slug: output} of completed dependencies for
--   a dependent step (skipped ones absent), the element for a map task.
-- Hot path: the partial index step_tasks_ready; cost independent of finished history.
create or replace function pgflow.claim_tasks(
  flow_slugs text[], worker_id uuid, max_tasks int default 10
)
returns setof pgflow.claimed_task
language plpgsql
volatile
security definer
set search_path = ''
as $$
begin
  perform pgflow._expire_leases(flow_slugs, 100);
  return query
  with picked as (
    select t.run_id, t.step_slug, t.task_index
    from pgflow.step_tasks t
    where t.status = 'queued' and t.available_at <= now()
      and t.flow_slug = any(claim_tasks.flow_slugs)
    order by t.priority_at
    limit greatest(claim_tasks.max_tasks, 0)
    for update skip locked
  ),
  claimed as (
    update pgflow.step_tasks t set
      status = 'started',
      attempts_count = t.attempts_count + 1,
      started_at = now(),
      worker_id = claim_tasks.worker_id,
      leased_until = now() + make_interval(secs => coalesce(s.opt_timeout, f.opt_timeout))
    from picked p, pgflow.steps s, pgflow.flows f
    where t.run_id = p.run_id and t.step_slug = p.step_slug and t.task_index = p.task_index
      and s.flow_slug = t.flow_slug and s.step_slug = t.step_slug
      and f.flow_slug = t.flow_slug
    returning t.run_id, t.flow_slug, t.step_slug, t.task_index, t.attempts_count, t.input,
      t.leased_until, s.step_type, s.deps_count
  )
  select c.run_id, c.flow_slug, c.step_slug, c.task_index, c.attempts_count,
    case when c.step_type = 'map' then c.input
      else pgflow._step_input(c.run_id, c.flow_slug, c.step_slug, r.input, c.deps_count) end,
    r.input, c.leased_until
  from claimed c join pgflow.runs r on r.run_id = c.run_id;
end;
$$;

-- _expire_leases(flow_slugs, max_tasks): tasks whose lease ran out (worker died or hung)
-- count as a failed attempt: re-queued with backoff, or failed for good when exhausted.
-- NULL flow_slugs means every flow. Returns how many leases expired.
create or replace function pgflow._expire_leases(flow_slugs text[], max_tasks int)
returns int
language plpgsql
volatile
set search_path = ''
as $$
declare
  t record;
  n int := 0;
begin
  for t in
    select x.run_id, x.step_slug, x.task_index, x.attempts_count, x.leased_until, x.started_at
    from pgflow.step_tasks x
    where x.status = 'started' and x.leased_until < now()
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
set search_path = ''
as $$
  select pgflow._expire_leases(null, 1000000);
$$;
