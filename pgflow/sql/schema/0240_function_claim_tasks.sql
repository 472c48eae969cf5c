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
-- every statement inside is an index lookup: a generic plan is right and saves re-planning
set plan_cache_mode = force_generic_plan
as $$
begin
  perform pgflow._expire_leases(flow_slugs, 100);
  -- Plans here must not depend on statistics: the picked rows are re-found by ctid (stable
  -- while we hold their row locks) and everything else is looked up per row, so a claim
  -- never scans the table, whatever the planner estimates.
  return query
  with picked as (
    -- per flow, the oldest claimable tasks, locked as the index is walked (SKIP LOCKED);
    -- then the oldest max_tasks of those across flows, so no flow starves another
    select p.ctid
    from unnest(claim_tasks.flow_slugs) as fs(slug)
    cross join lateral (
      select t.ctid, t.priority_at
      from pgflow.step_tasks t
      where t.flow_slug = fs.slug and t.status = 'queued' and t.available_at <= now()
      order by t.priority_at
      limit greatest(claim_tasks.max_tasks, 0)
      for update skip locked
    ) p
    order by p.priority_at
    limit greatest(claim_tasks.max_tasks, 0)
  ),
  claimed as (
    update pgflow.step_tasks t set
      status = 'started',
      attempts_count = t.attempts_count + 1,
      started_at = now(),
      worker_id = claim_tasks.worker_id,
      leased_until = now() + make_interval(secs => (
        select coalesce(s.opt_timeout, f.opt_timeout)
        from pgflow.steps s join pgflow.flows f on f.flow_slug = s.flow_slug
        where s.flow_slug = t.flow_slug and s.step_slug = t.step_slug))
    where t.ctid = any(array(select p.ctid from picked p))
    returning t.run_id, t.flow_slug, t.step_slug, t.task_index, t.attempts_count, t.input,
      t.leased_until
  )
  select c.run_id, c.flow_slug, c.step_slug, c.task_index, c.attempts_count,
    case
      when c.input is not null then c.input  -- a map element
      when not exists (select 1 from pgflow.deps d
                       where d.flow_slug = c.flow_slug and d.step_slug = c.step_slug)
        then (select r.input from pgflow.runs r where r.run_id = c.run_id)
      else (
        -- inlined rather than a function call: this is the hot path
        select coalesce(jsonb_object_agg(d.dep_slug, ds.output), '{}'::jsonb)
        from pgflow.deps d
        join pgflow.step_states ds on ds.run_id = c.run_id and ds.step_slug = d.dep_slug
        where d.flow_slug = c.flow_slug and d.step_slug = c.step_slug
          and ds.status = 'completed'
      ) end,
    (select r.input from pgflow.runs r where r.run_id = c.run_id),
    c.leased_until
  from claimed c;
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
