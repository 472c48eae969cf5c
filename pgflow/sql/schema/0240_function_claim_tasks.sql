-- claim_tasks(flow_slugs, worker_id, max_tasks, step_slugs): lease up to max_tasks
-- claimable tasks of the given flows to a worker, in one round trip.
-- * step_slugs (a worker pool): NULL serves every step; otherwise only tasks of steps with
--   these slugs (in any of the flows) are claimed, through step_tasks_ready_by_step, so a
--   pool serving a rare step costs the same whatever the backlog of the flow's other steps.
--   Flows still take turns, and within a flow the tags decide (runs take turns).
-- * Claimable: status 'queued', available_at <= now() and a priority_at tag (tasks that
--   wait for a time are tagged first, by _tag_due_tasks). FOR UPDATE SKIP LOCKED, so a
--   task is never leased to two workers at once.
-- * Fair: each flow offers its oldest tags; flows take turns (the first task of every flow,
--   then the second ...), and tags are assigned so that runs take turns within a flow (see
--   _queue_head). With many ready tasks in one run or flow and one in another, a claim with
--   room for two returns one of each.
-- * Priorities: a tag's band (see _queue_head) is its run's priority; higher bands are
--   claimed first, and the turns above hold within a band.
-- * Each claimed task: attempts_count + 1 (the fencing token a report must name), leased
--   until now() + its effective timeout (step's, else flow's), worker_id recorded.
--   Registration is not required.
-- * Expired leases of these flows are handled first (re-queued, or failed when exhausted),
--   so correctness never depends on a cron job.
-- * input: the run input for a root step, {dep_slug: output} of completed dependencies for
--   a dependent step (skipped ones absent), the element for a map task.
-- * trace_context: the run's (see start_flow); claim_lag: seconds from the task becoming
--   claimable (available_at) to this claim, for the worker's telemetry.
-- * A task that must not run is never handed out: one whose run is finished or gone (left
--   by an older version) is cancelled; one whose input is too big to build (a fan-in over
--   the jsonb limit) has its attempt failed with error_type InputTooLarge. Other tasks of
--   the same claim are unaffected.
-- Hot path: the partial index step_tasks_ready; cost independent of finished history.
create or replace function pgflow.claim_tasks(
  flow_slugs text[], worker_id uuid, max_tasks int default 10, step_slugs text[] default null
)
returns setof pgflow.claimed_task
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
-- every statement inside is an index lookup: a generic plan is right and saves re-planning
set plan_cache_mode = force_generic_plan
as $$
declare
  task record;
  result pgflow.claimed_task;
  limit_bytes bigint := pgflow._jsonb_limit_bytes();
  picked tid[];
begin
  perform pgflow._expire_leases(flow_slugs, 100);
  perform pgflow._tag_due_tasks(flow_slugs, 1000);
  -- Plans here must not depend on statistics: the picked rows are re-found by ctid (stable
  -- while we hold their row locks) and everything else is looked up per row, so a claim
  -- never scans the table, whatever the planner estimates.
  -- Picked: per flow, the oldest tags, locked as the index is walked (SKIP LOCKED); then
  -- bands (priorities) in order and, within one, the flows take turns. A pool walks
  -- step_tasks_ready_by_step per flow and served step instead, merged per flow by tag. Two
  -- statements rather than one with both branches: that one costs every claim more.
  if claim_tasks.step_slugs is null then
    picked := array(select p.ctid from (
        select q.ctid, q.priority_at, q.turn, q.band
        from (select distinct s.slug from unnest(claim_tasks.flow_slugs) as s(slug)) as fs
        cross join lateral (
          select x.ctid, x.priority_at, x.band,
            row_number() over (partition by x.band order by x.priority_at) as turn
          from (
            select t.ctid, t.priority_at,
              round(date_part('epoch', pgflow._now() - t.priority_at) / 315360000.0) as band
            from pgflow.step_tasks t
            where t.flow_slug = fs.slug and t.status = 'queued' and t.priority_at is not null
              and t.available_at <= pgflow._now()
            order by t.priority_at
            limit greatest(claim_tasks.max_tasks, 0)
            for update skip locked
          ) as x
        ) as q
      ) as p
      order by p.band desc, p.turn, p.priority_at
      limit greatest(claim_tasks.max_tasks, 0));
  else
    picked := array(select p.ctid from (
        select y.ctid, y.priority_at,
          row_number() over (partition by y.flow_slug, y.band order by y.priority_at) as turn,
          y.band
        from (
          select x.ctid, x.priority_at, fs.slug as flow_slug,
            round(date_part('epoch', pgflow._now() - x.priority_at) / 315360000.0) as band
          from (select distinct s.slug from unnest(claim_tasks.flow_slugs) as s(slug)) as fs
          cross join (select distinct s.slug
                      from unnest(claim_tasks.step_slugs) as s(slug)) as ss
          cross join lateral (
            select t.ctid, t.priority_at
            from pgflow.step_tasks t
            where (t.flow_slug || '.' || t.step_slug) = fs.slug || '.' || ss.slug
              and t.status = 'queued' and t.priority_at is not null
              and t.available_at <= pgflow._now()
            order by t.priority_at
            limit greatest(claim_tasks.max_tasks, 0)
            for update skip locked
          ) as x
        ) as y
      ) as p
      order by p.band desc, p.turn, p.priority_at
      limit greatest(claim_tasks.max_tasks, 0));
  end if;
  for task in
    with claimed as (
      update pgflow.step_tasks t set
        status = 'started',
        attempts_count = t.attempts_count + 1,
        started_at = pgflow._now(),
        worker_id = claim_tasks.worker_id,
        leased_until = pgflow._now() + make_interval(secs => coalesce((
          select coalesce(s.opt_timeout, f.opt_timeout)
          from pgflow.steps s join pgflow.flows f on f.flow_slug = s.flow_slug
          where s.flow_slug = t.flow_slug and s.step_slug = t.step_slug), 60))
      where t.ctid = any(picked)
      returning t.run_id, t.flow_slug, t.step_slug, t.task_index, t.attempts_count, t.input,
        t.input_bytes, t.leased_until, t.priority_at, t.available_at
    )
    select c.run_id, c.flow_slug, c.step_slug, c.task_index, c.attempts_count, c.input_bytes,
      c.leased_until, r.status as run_status, r.input as flow_input,
      r.trace_context, extract(epoch from pgflow._now() - c.available_at)::float8 as claim_lag,
      case
        when c.input is not null then c.input  -- a map element
        when r.status is distinct from 'started' or c.input_bytes > limit_bytes then null
        when not exists (select 1 from pgflow.deps d
                         where d.flow_slug = c.flow_slug and d.step_slug = c.step_slug)
          then r.input
        else (
          -- inlined rather than a function call: this is the hot path
          select coalesce(jsonb_object_agg(d.dep_slug, ds.output), '{}'::jsonb)
          from pgflow.deps d
          join pgflow.step_states ds on ds.run_id = c.run_id and ds.step_slug = d.dep_slug
          where d.flow_slug = c.flow_slug and d.step_slug = c.step_slug
            and ds.status = 'completed'
        ) end as input
    from claimed c
    left join pgflow.runs r on r.run_id = c.run_id
    order by c.priority_at, c.task_index
  loop
    if task.run_status is distinct from 'started' then
      update pgflow.step_tasks t set status = 'cancelled', cancelled_at = pgflow._now(),
        leased_until = null
      where t.run_id = task.run_id and t.step_slug = task.step_slug
        and t.task_index = task.task_index;
    elsif task.input_bytes > limit_bytes then
      perform pgflow._fail_task(task.run_id, task.step_slug, task.task_index,
        task.attempts_count, format('the input of step %L would be %s bytes (its '
          || 'dependencies'' outputs together), over the %s bytes a jsonb value can hold; '
          || 'return smaller outputs, or store them elsewhere and return references',
          task.step_slug, task.input_bytes, limit_bytes), 'InputTooLarge', null);
    else
      result := (task.run_id, task.flow_slug, task.step_slug, task.task_index,
        task.attempts_count, task.input, task.flow_input, task.leased_until,
        task.trace_context, task.claim_lag);
      return next result;
    end if;
  end loop;
end;
$$;

-- _tag_due_tasks(flow_slugs, max_tasks): tasks of these flows whose wait is over
-- (start_delay, retry backoff, release) get their fair-queuing tag: the flow's queue head
-- in their run's priority band (see _queue_head), plus one millisecond per task_index for a
-- first attempt (a delayed map interleaves like any other). Returns how many were tagged.
create or replace function pgflow._tag_due_tasks(flow_slugs text[], max_tasks int)
returns int
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
as $$
declare
  n int;
begin
  with due as (
    select d.ctid, d.flow_slug, d.task_index, d.attempts_count,
      coalesce((select r.priority from pgflow.runs r where r.run_id = d.run_id), 0) as priority
    from (select distinct s.slug from unnest(_tag_due_tasks.flow_slugs) as s(slug)) as fs
    cross join lateral (
      select t.ctid, t.flow_slug, t.task_index, t.attempts_count, t.run_id
      from pgflow.step_tasks t
      where t.flow_slug = fs.slug and t.status = 'queued' and t.priority_at is null
        and t.available_at <= pgflow._now()
      order by t.available_at
      limit _tag_due_tasks.max_tasks
      for update skip locked
    ) as d
  ),
  heads as (
    select h.flow_slug, h.priority, pgflow._queue_head(h.flow_slug, h.priority) as head
    from (select distinct due.flow_slug, due.priority from due) as h
  )
  update pgflow.step_tasks t
  set priority_at = h.head + case when d.attempts_count = 0
    then make_interval(secs => d.task_index / 1000.0) else interval '0' end
  from due d join heads h on h.flow_slug = d.flow_slug and h.priority = d.priority
  where t.ctid = d.ctid;
  get diagnostics n = row_count;
  return n;
end;
$$;
