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
-- * Limits: when any of the flows has concurrency or rate limits (set_limits), the pick is
--   _pick_limited's, which keeps the order above and skips tasks without a free slot or a
--   rate token. Flows without limits pay one index probe of pgflow.limits.
-- * Each claimed task: attempts_count + 1 (the fencing token a report must name), leased
--   until now() + its effective timeout (step's, else flow's), worker_id recorded.
--   Registration is not required.
-- * Expired leases of these flows are handled first (re-queued, or failed when exhausted),
--   so correctness never depends on a cron job.
-- * input: the run input for a root step, {dep_slug: output} of completed dependencies for
--   a dependent step (skipped ones absent), the element for a map task. Values stored by
--   reference arrive as their references (docs/large-values.md). flow_input: the run input,
--   NULL for map tasks (task_flow_input serves it to the attempt that asks).
-- * trace_context: the run's (see start_flow); claim_lag: seconds from the task becoming
--   claimable (available_at) to this claim, for the worker's telemetry.
-- * A task that must not run is never handed out: one whose run is finished or gone (left
--   by an older version) is cancelled; one whose input is too big to build (a fan-in over
--   the jsonb limit) has its attempt failed with error_type InputTooLarge. Other tasks of
--   the same claim are unaffected.
-- * A task listener registered under this worker_id (listen_tasks) is marked waiting when
--   fewer than max_tasks tasks are returned, not waiting when max_tasks are (the worker
--   claims again as soon as it has room, so notifying it is useless: 0200); written only
--   when it changes.
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
-- and rows are looked up one by one (nested loops; the picked rows by primary key, whose run
-- id prunes the partitions), whatever the statistics of a partition say (a new month's is
-- empty when a plan is made, and fills up under it)
set enable_hashjoin = off
set enable_mergejoin = off
set enable_seqscan = off
as $$
declare
  task record;
  result pgflow.claimed_task;
  limit_bytes bigint := pgflow._jsonb_limit_bytes();
  picked_runs uuid[];
  picked_steps text[];
  picked_indexes int[];
  returned int := 0;
begin
  perform pgflow._expire_leases(flow_slugs, 100);
  perform pgflow._tag_due_tasks(flow_slugs, 1000);
  -- Plans here must not depend on statistics: the picked rows are re-found by primary key
  -- (its run id picks the partition) and everything else is looked up per row, so a claim
  -- never scans the table, whatever the planner estimates. Not by ctid: a ctid is unique
  -- within one partition only, and (run id, ctid) lets a plan made on an empty partition
  -- read every task of the run to find each pick (a 10,000-element map: 10,000 per pick).
  -- Picked: per flow, the oldest tags, locked as the index is walked (SKIP LOCKED); then
  -- bands (priorities) in order and, within one, the flows take turns. A pool walks
  -- step_tasks_ready_by_step per flow and served step instead, merged per flow by tag. Two
  -- statements rather than one with both branches: that one costs every claim more.
  if exists (select 1 from pgflow.limits l where l.flow_slug = any(claim_tasks.flow_slugs))
  then
    select l.run_ids, l.steps, l.task_indexes into picked_runs, picked_steps, picked_indexes
    from pgflow._pick_limited(claim_tasks.flow_slugs, claim_tasks.step_slugs,
      claim_tasks.max_tasks) as l;
  elsif claim_tasks.step_slugs is null then
    select array_agg(o.run_id), array_agg(o.step_slug), array_agg(o.task_index)
    into picked_runs, picked_steps, picked_indexes from (
      select p.run_id, p.step_slug, p.task_index from (
        select q.run_id, q.step_slug, q.task_index, q.priority_at, q.turn, q.band
        from (select distinct s.slug from unnest(claim_tasks.flow_slugs) as s(slug)) as fs
        cross join lateral (
          select x.run_id, x.step_slug, x.task_index, x.priority_at, x.band,
            row_number() over (partition by x.band order by x.priority_at) as turn
          from (
            select t.run_id, t.step_slug, t.task_index, t.priority_at,
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
      limit greatest(claim_tasks.max_tasks, 0)) as o;
  else
    select array_agg(o.run_id), array_agg(o.step_slug), array_agg(o.task_index)
    into picked_runs, picked_steps, picked_indexes from (
      select p.run_id, p.step_slug, p.task_index from (
        select y.run_id, y.step_slug, y.task_index, y.priority_at,
          row_number() over (partition by y.flow_slug, y.band order by y.priority_at) as turn,
          y.band
        from (
          select x.run_id, x.step_slug, x.task_index, x.priority_at, fs.slug as flow_slug,
            round(date_part('epoch', pgflow._now() - x.priority_at) / 315360000.0) as band
          from (select distinct s.slug from unnest(claim_tasks.flow_slugs) as s(slug)) as fs
          cross join (select distinct s.slug
                      from unnest(claim_tasks.step_slugs) as s(slug)) as ss
          cross join lateral (
            select t.run_id, t.step_slug, t.task_index, t.priority_at
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
      limit greatest(claim_tasks.max_tasks, 0)) as o;
  end if;
  -- the picked rows are updated and their inputs built by _claim_picked: its lookups by
  -- key cannot turn into scans, whatever a partition's statistics say (see there)
  for task in
    select * from pgflow._claim_picked(claim_tasks.worker_id, picked_runs, picked_steps,
      picked_indexes, limit_bytes)
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
      returned := returned + 1;
    end if;
  end loop;
  update pgflow.listeners l set waiting = returned < claim_tasks.max_tasks
  where l.listener_id = claim_tasks.worker_id and l.flow_slug is not null
    and l.waiting <> (returned < claim_tasks.max_tasks);
end;
$$;

-- _tag_due_tasks(flow_slugs, max_tasks): tasks of these flows whose wait is over
-- (start_delay, retry backoff, release) get their fair-queuing tag: the flow's queue head
-- in their run's priority band (see _queue_head), plus one millisecond per task_index for a
-- first attempt (a delayed map interleaves like any other). Returns how many were tagged.
-- Every claim calls it and it almost always finds nothing, so a read-only look comes first:
-- it starts one index scan per history partition, where the update below also sets up the
-- row locks and the update of every partition, which a claim paid per month of history
-- (benchmarks/history_months.py).
create or replace function pgflow._tag_due_tasks(flow_slugs text[], max_tasks int)
returns int
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
set enable_hashjoin = off
set enable_mergejoin = off
set enable_seqscan = off
as $$
declare
  n int;
begin
  -- the same walk as the update's, per flow in available_at order (step_tasks_waiting)
  if not exists (
    select 1
    from (select distinct s.slug from unnest(_tag_due_tasks.flow_slugs) as s(slug)) as fs
    cross join lateral (
      select 1 from pgflow.step_tasks t
      where t.flow_slug = fs.slug and t.status = 'queued' and t.priority_at is null
        and t.available_at <= pgflow._now()
      order by t.available_at
      limit 1
    ) as d
  ) then
    return 0;
  end if;
  with due as (
    select d.run_id, d.step_slug, d.flow_slug, d.task_index, d.attempts_count,
      coalesce((select r.priority from pgflow.runs r where r.run_id = d.run_id), 0) as priority
    from (select distinct s.slug from unnest(_tag_due_tasks.flow_slugs) as s(slug)) as fs
    cross join lateral (
      select t.run_id, t.step_slug, t.flow_slug, t.task_index, t.attempts_count
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
  where t.run_id = d.run_id and t.step_slug = d.step_slug and t.task_index = d.task_index;
  get diagnostics n = row_count;
  return n;
end;
$$;

-- _pick_limited(flow_slugs, step_slugs, max_tasks): claim_tasks' pick when some of these
-- flows have limits (pgflow.limits): up to max_tasks claimable tasks (locked, FOR UPDATE SKIP
-- LOCKED) in claim_tasks' order (bands, then flows take turns, then tags), skipping each task
-- that a concurrency limit has no slot for or a rate limit no token for. Takes the tokens.
-- * Race-free across workers: each limited flow's limits lock (a transaction advisory lock,
--   taken in slug order) is held from counting to commit, so two claims never both see the
--   same free slot or token; claims of flows without limits never take it. Candidates are
--   read without row locks and only the picked tasks are locked (SKIP LOCKED) at the end.
-- * In use: tasks leased now (leased_until set); the caller re-queued expired leases first,
--   so a dead holder's slot frees when its lease expires.
-- * A step whose unkeyed limits are full is not looked at; otherwise at most the room left
--   is fetched. A keyed limit fetches up to max(10 * max_tasks, 100) candidates of a step,
--   so tasks of a full key (e.g. one busy customer) can hide others behind them in one
--   claim; a later claim sees those once slots free.
-- Cost: only claims of limited flows pay: a lookup per step of those flows, a count over
-- the leased tasks of those flows, the rate buckets of the candidates' keys.
create or replace function pgflow._pick_limited(
  flow_slugs text[], step_slugs text[], max_tasks int,
  out run_ids uuid[], out steps text[], out task_indexes int[]
)
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
set plan_cache_mode = force_generic_plan
set enable_hashjoin = off
set enable_mergejoin = off
set enable_seqscan = off
as $$
declare
  now_ timestamptz := pgflow._now();
  used jsonb;   -- concurrency slots taken, by scope "flow|step|key value" ('' step: the flow)
  tokens jsonb; -- rate tokens left as of now_, by the same scopes
  spent text[] := '{}'::text[];  -- the scopes whose tokens this claim took
  picked_runs uuid[] := '{}'::uuid[];
  picked_steps text[] := '{}'::text[];
  picked_indexes int[] := '{}'::int[];
  cand record;
  left_ float8;
  scan int := greatest(10 * max_tasks, 100);
begin
  if coalesce(max_tasks, 0) <= 0 then
    run_ids := picked_runs;
    steps := picked_steps;
    task_indexes := picked_indexes;
    return;
  end if;
  perform pg_advisory_xact_lock(hashtext('pgflow.limits:' || f.flow_slug))
  from (select distinct l.flow_slug from pgflow.limits l
        where l.flow_slug = any(_pick_limited.flow_slugs) order by 1) as f;
  select coalesce(jsonb_object_agg(u.scope, u.n), '{}'::jsonb) into used from (
    select l.flow_slug || '|' || l.step_slug || '|'
        || pgflow._key_value(coalesce(r.limit_keys, r.input), l.key) as scope, count(*) as n
    from pgflow.limits l
    join pgflow.step_tasks t on t.flow_slug = l.flow_slug and t.leased_until is not null
      and (l.step_slug = '' or t.step_slug = l.step_slug)
    left join pgflow.runs r on l.key is not null and r.run_id = t.run_id
    where l.flow_slug = any(_pick_limited.flow_slugs) and l.kind = 'concurrency'
    group by 1) as u;
  select coalesce(jsonb_object_agg(l.flow_slug || '|' || l.step_slug || '|*',
      pgflow._refilled(l.max_count, l.per, b.tokens, b.refilled_at, now_)), '{}'::jsonb)
  into tokens
  from pgflow.limits l
  left join pgflow.rate_buckets b on b.flow_slug = l.flow_slug
    and b.step_slug = l.step_slug and b.key_value = '*'
  where l.flow_slug = any(_pick_limited.flow_slugs) and l.kind = 'rate' and l.key is null;

  for cand in
    select c.* from (
      select x.*, x.flow_slug || '|' || x.step_slug || '|' || x.rkey_value as rscope,
        row_number() over (partition by x.flow_slug, x.band order by x.priority_at) as turn
      from (
        select st.flow_slug, st.step_slug, st.fmax, st.smax, st.rmax, st.rper,
          t.run_id, t.task_index, t.priority_at,
          round(date_part('epoch', now_ - t.priority_at) / 315360000.0) as band,
          st.flow_slug || '||' || pgflow._key_value(coalesce(r.limit_keys, r.input), st.fkey)
            as fscope,
          st.flow_slug || '|' || st.step_slug || '|'
            || pgflow._key_value(coalesce(r.limit_keys, r.input), st.skey) as sscope,
          pgflow._key_value(coalesce(r.limit_keys, r.input), st.rkey) as rkey_value
        from (
          select s.flow_slug, s.step_slug, fl.max_count as fmax, fl.key as fkey,
            sl.max_count as smax, sl.key as skey, rl.max_count as rmax, rl.per as rper,
            rl.key as rkey,
            case when fl.key is not null or sl.key is not null or rl.key is not null then scan
              else least(max_tasks,
                fl.max_count - coalesce((used ->> (s.flow_slug || '||*'))::int, 0),
                sl.max_count - coalesce((used ->> (s.flow_slug || '|' || s.step_slug
                  || '|*'))::int, 0),
                floor((tokens ->> (s.flow_slug || '|' || s.step_slug || '|*'))::float8)::int)
            end as quota
          from pgflow.steps s
          left join pgflow.limits fl on fl.flow_slug = s.flow_slug and fl.step_slug = ''
            and fl.kind = 'concurrency'
          left join pgflow.limits sl on sl.flow_slug = s.flow_slug
            and sl.step_slug = s.step_slug and sl.kind = 'concurrency'
          left join pgflow.limits rl on rl.flow_slug = s.flow_slug
            and rl.step_slug = s.step_slug and rl.kind = 'rate'
          where s.flow_slug = any(_pick_limited.flow_slugs)
            and (_pick_limited.step_slugs is null or s.step_slug = any(_pick_limited.step_slugs))
        ) as st
        cross join lateral (
          select t.run_id, t.task_index, t.priority_at
          from pgflow.step_tasks t
          where (t.flow_slug || '.' || t.step_slug) = st.flow_slug || '.' || st.step_slug
            and t.status = 'queued' and t.priority_at is not null
            and t.available_at <= now_
          order by t.priority_at
          limit greatest(st.quota, 0)
        ) as t
        left join pgflow.runs r on (st.fkey is not null or st.skey is not null
          or st.rkey is not null) and r.run_id = t.run_id
        where st.quota > 0
      ) as x
    ) as c
    order by c.band desc, c.turn, c.priority_at
  loop
    continue when cand.fmax <= coalesce((used ->> cand.fscope)::int, 0)
      or cand.smax <= coalesce((used ->> cand.sscope)::int, 0);
    if cand.rmax is not null then
      if not tokens ? cand.rscope then
        select pgflow._refilled(cand.rmax, cand.rper, b.tokens, b.refilled_at, now_)
        into left_
        from (select 1) as one
        left join pgflow.rate_buckets b on b.flow_slug = cand.flow_slug
          and b.step_slug = cand.step_slug and b.key_value = cand.rkey_value;
        tokens := tokens || jsonb_build_object(cand.rscope, left_);
      end if;
      left_ := (tokens ->> cand.rscope)::float8;
      continue when left_ < 1;
      tokens := jsonb_set(tokens, array[cand.rscope], to_jsonb(left_ - 1));
      spent := spent || cand.rscope;
    end if;
    if cand.fmax is not null then
      used := jsonb_set(used, array[cand.fscope],
        to_jsonb(coalesce((used ->> cand.fscope)::int, 0) + 1));
    end if;
    if cand.smax is not null then
      used := jsonb_set(used, array[cand.sscope],
        to_jsonb(coalesce((used ->> cand.sscope)::int, 0) + 1));
    end if;
    picked_runs := picked_runs || cand.run_id;
    picked_steps := picked_steps || cand.step_slug;
    picked_indexes := picked_indexes || cand.task_index;
    exit when cardinality(picked_runs) >= max_tasks;
  end loop;

  -- Lock what was picked. Candidates are read without locks (a keyed limit may look at many
  -- to use few): claims of a limited flow are serialised by its limits lock, so only an
  -- expiry, a cancellation or a claim of an unlimited flow in the same call can have taken
  -- one since, and such a task is left out.
  select coalesce(array_agg(x.run_id), '{}'), coalesce(array_agg(x.step_slug), '{}'),
    coalesce(array_agg(x.task_index), '{}')
  into run_ids, steps, task_indexes
  from (select t.run_id, t.step_slug, t.task_index from pgflow.step_tasks t
        join unnest(picked_runs, picked_steps, picked_indexes) as p(run_id, step_slug, task_index)
          on t.run_id = p.run_id and t.step_slug = p.step_slug and t.task_index = p.task_index
        where t.status = 'queued'
        for update of t skip locked) as x;
  insert into pgflow.rate_buckets as b (flow_slug, step_slug, key_value, tokens, refilled_at)
  select split_part(s.scope, '|', 1), split_part(s.scope, '|', 2),
    substr(s.scope, length(split_part(s.scope, '|', 1))
      + length(split_part(s.scope, '|', 2)) + 3),
    (tokens ->> s.scope)::float8, now_
  from (select distinct x.scope from unnest(spent) as x(scope)) as s
  on conflict (flow_slug, step_slug, key_value)
  do update set tokens = excluded.tokens, refilled_at = excluded.refilled_at;
  -- a few buckets idle for a whole period are full again: the same as no row
  delete from pgflow.rate_buckets b where b.ctid = any(array(
    select i.ctid from pgflow.rate_buckets i
    join pgflow.limits l on l.flow_slug = i.flow_slug and l.step_slug = i.step_slug
      and l.kind = 'rate'
    where i.refilled_at < now_ - l.per
    order by i.refilled_at
    limit 10));
end;
$$;

-- _refilled(max_count, per, tokens, refilled_at, at): a token bucket's tokens at `at`: it
-- refills at max_count per `per`, up to max_count; NULL tokens (no row) is a full bucket.
create or replace function pgflow._refilled(
  max_count int, per interval, tokens float8, refilled_at timestamptz, at timestamptz
)
returns float8
language sql
immutable
set search_path = pg_catalog, pg_temp
as $$
  select case when tokens is null then max_count::float8
    else least(max_count::float8, tokens + greatest(date_part('epoch', at - refilled_at), 0)
      * max_count / date_part('epoch', per)) end
$$;

-- _key_value(input, key): the group a run belongs to under a limit keyed by `key`: the JSON
-- text of that input field ('null' when absent or not an object); '*' for an unkeyed limit.
-- Callers pass coalesce(runs.limit_keys, runs.input): for an input stored by reference, the
-- fields start_flow kept inline. A JSON text over 128 characters stands as 'md5:' and its
-- md5 (JSON text never starts so), so a huge key value costs a claim and a rate bucket row
-- no more than a short one.
create or replace function pgflow._key_value(input jsonb, key text)
returns text
language sql
immutable
set search_path = pg_catalog, pg_temp
as $$
  select case when key is null then '*'
    when length(v.text) > 128 then 'md5:' || md5(v.text)
    else v.text end
  from (select coalesce(case when jsonb_typeof(input) = 'object' then (input -> key)::text end,
    'null') as text) as v
$$;
