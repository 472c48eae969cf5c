-- retry_run(run_id): start a failed or cancelled run again where it stopped; returns the run.
-- * Completed steps keep their outputs and are not run again; in a map, completed elements
--   keep theirs and only the others run again.
-- * Run again, each task with a fresh attempt budget: failed and cancelled steps (those that
--   had started keep their tasks and re-queue the unfinished ones; the others start afresh
--   once their dependencies are done), and steps skipped because their retries ran out
--   (when_exhausted 'skip' or 'skip-cascade') with whatever that skip cascaded to.
--   A skip stays when a later step already started or completed without that step's output,
--   and a skip decided by a condition stays, with whatever it cascaded to; a condition is
--   evaluated again only when it depends on the output of a step that runs again.
-- * Attempt numbers keep counting (they fence reports); only the budget starts again
--   (step_tasks.forgiven_attempts). A late report of an earlier attempt changes nothing.
-- * A started or completed run is returned unchanged, so of two concurrent retries one
--   restarts the run and the other returns it as the first left it.
-- * Unknown (or NULL) run: PGF07. PGF11 when the flow's shape changed since the run
--   started: the run's recorded checksum differs from the flow's (a run without one,
--   started before 0002 or of a flow defined without a declared shape, is compared step by
--   step: slugs, order and types).
-- * Emits run:retried, then step:<slug>:started for each step that resumes; wakes workers.
-- Locks: the flow's lock in shared mode (as start_flow: never while `deploy --dev` recreates
-- the flow), then the run row, then the run's unfinished tasks in primary-key order, then
-- its step states. No live task of a finished run exists, so nothing that follows the
-- tasks -> steps -> run order elsewhere waits on this run's row meanwhile.
-- Cost: O(steps + edges + the tasks that run again); a retry is not a hot path.
create or replace function pgflow.retry_run(run_id uuid)
returns pgflow.runs
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  flow text;
  result pgflow.runs;
  s record;
  reached text[] := '{}'::text[];  -- steps a later step acted on (started or completed after them)
  pinned text[] := '{}'::text[];   -- skips that stay, with what they cascaded to
  rerun text[] := '{}'::text[];    -- steps that run again
  resumed text[] := '{}'::text[];  -- of those, steps that had started (they keep their tasks)
  head timestamptz;
  finished int := 0;
begin
  select r.flow_slug into flow from pgflow.runs r where r.run_id = retry_run.run_id;
  if found then
    perform pg_advisory_xact_lock_shared(hashtext('pgflow.flow:' || flow));
    select * into result from pgflow.runs r where r.run_id = retry_run.run_id for update;
  end if;
  if result.run_id is null then
    perform pgflow._raise('PGF07', format('unknown run %s', coalesce(run_id::text, 'NULL')),
      'Check the run id; `pgflow runs` lists recent runs.');
  end if;
  if result.status not in ('failed', 'cancelled') then
    return result;
  end if;
  perform pgflow._check_retry_shape(result);

  -- Which skips a later step acted on: every ancestor of a step that has tasks or completed.
  for s in
    select ss.step_slug, ss.status = 'completed' or exists (
        select 1 from pgflow.step_tasks t
        where t.run_id = ss.run_id and t.step_slug = ss.step_slug) as acted
    from pgflow.step_states ss
    where ss.run_id = retry_run.run_id
    order by ss.step_index desc
  loop
    if s.acted or s.step_slug = any(reached) then
      reached := reached || array(select d.dep_slug from pgflow.deps d
                                  where d.flow_slug = flow and d.step_slug = s.step_slug);
    end if;
  end loop;

  -- What runs again, in definition (topological) order.
  for s in
    select ss.step_slug, ss.status, ss.skip_reason, st.when_unmet, st.when_exhausted,
      exists (select 1 from pgflow.step_tasks t
              where t.run_id = ss.run_id and t.step_slug = ss.step_slug) as has_tasks,
      array(select d.dep_slug from pgflow.deps d
            where d.flow_slug = ss.flow_slug and d.step_slug = ss.step_slug) as deps
    from pgflow.step_states ss
    join pgflow.steps st on st.flow_slug = ss.flow_slug and st.step_slug = ss.step_slug
    where ss.run_id = retry_run.run_id
    order by ss.step_index
  loop
    continue when s.status = 'completed';
    if s.status = 'skipped' and (s.step_slug = any(reached) or s.deps && pinned
        or (not s.has_tasks and not (s.deps && rerun))) then
      -- the skip stays; one that cascaded keeps its descendants skipped too
      if s.deps && pinned
         or (s.has_tasks and s.when_exhausted = 'skip-cascade')
         or (not s.has_tasks and s.when_unmet = 'skip-cascade'
             and s.skip_reason like 'condition unmet%') then
        pinned := pinned || s.step_slug;
      end if;
      continue;
    end if;
    rerun := rerun || s.step_slug;
    if s.has_tasks then
      resumed := resumed || s.step_slug;
    end if;
  end loop;

  -- Tasks first (primary-key order), then step states, then the run.
  perform 1 from pgflow.step_tasks t
  where t.run_id = retry_run.run_id and t.step_slug = any(resumed) and t.status <> 'completed'
  order by t.step_slug, t.task_index
  for update;
  head := pgflow._queue_head(flow, result.priority);
  with requeued as (
    update pgflow.step_tasks t set
      status = 'queued', forgiven_attempts = t.attempts_count - t.releases,
      leased_until = null, worker_id = null, started_at = null, failed_at = null,
      cancelled_at = null, available_at = pgflow._now(),
      priority_at = head + make_interval(secs => t.task_index / 1000.0)
    where t.run_id = retry_run.run_id and t.step_slug = any(resumed) and t.status <> 'completed'
    returning t.step_slug
  ), counts as (
    select x.slug, count(q.step_slug)::int as n
    from unnest(resumed) as x(slug) left join requeued q on q.step_slug = x.slug
    group by x.slug
  )
  update pgflow.step_states ss set
    status = 'started', remaining_tasks = c.n, output = null, output_bytes = null,
    error_message = null, skip_reason = null, completed_at = null, failed_at = null,
    skipped_at = null, cancelled_at = null
  from counts c
  where ss.run_id = retry_run.run_id and ss.step_slug = c.slug;

  update pgflow.step_states ss set
    status = 'created', remaining_deps = (
      select count(*)::int from pgflow.deps d
      where d.flow_slug = ss.flow_slug and d.step_slug = ss.step_slug
        and d.dep_slug = any(rerun)),
    remaining_tasks = null, initial_tasks = null, output = null, output_bytes = null,
    error_message = null, skip_reason = null, started_at = null, completed_at = null,
    failed_at = null, skipped_at = null, cancelled_at = null
  where ss.run_id = retry_run.run_id and ss.step_slug = any(rerun)
    and not (ss.step_slug = any(resumed));

  update pgflow.runs r set
    status = 'started', remaining_steps = cardinality(rerun), output = null,
    output_bytes = null, error_message = null, completed_at = null, failed_at = null,
    cancelled_at = null, finished_at = null
  where r.run_id = retry_run.run_id;
  perform pgflow._emit(run_id, flow, 'run:retried', 'started');
  perform pgflow._emit(run_id, flow, 'step:' || x.slug || ':started', 'started', x.slug)
  from unnest(resumed) as x(slug);
  if cardinality(resumed) > 0 then
    perform pgflow._wake_workers(flow);
  end if;

  -- A resumed step with nothing left to run (a map whose every element had completed but
  -- whose outputs could not be stored) finishes now, as its last completion would have.
  for s in
    select ss.step_slug, t.output, t.output_bytes
    from pgflow.step_states ss
    left join pgflow.step_tasks t
      on t.run_id = ss.run_id and t.step_slug = ss.step_slug and t.task_index = 0
    where ss.run_id = retry_run.run_id and ss.step_slug = any(resumed)
      and ss.remaining_tasks = 0
  loop
    finished := finished + least(
      pgflow._tasks_done(run_id, s.step_slug, 0, s.output, s.output_bytes), 1);
  end loop;
  if (select r.status from pgflow.runs r where r.run_id = retry_run.run_id) = 'started' then
    perform pgflow._advance_run(run_id, finished, true);
  end if;
  select * into result from pgflow.runs r where r.run_id = retry_run.run_id;
  return result;
end;
$$;

-- _check_retry_shape(run): raise PGF11 unless the run's flow still has the shape the run
-- started with (see retry_run).
create or replace function pgflow._check_retry_shape(run pgflow.runs)
returns void
language plpgsql
stable
set search_path = pg_catalog, pg_temp
as $$
declare
  deployed text;
  same boolean;
begin
  select coalesce(f.checksum, pgflow.flow_checksum(f.flow_slug)) into deployed
  from pgflow.flows f where f.flow_slug = run.flow_slug;
  if run.flow_checksum is not null then
    same := run.flow_checksum = deployed;
  else
    select deployed is not null and not exists (
      select 1
      from (select s.step_slug, s.step_index, s.step_type from pgflow.steps s
            where s.flow_slug = run.flow_slug) s
      full join (select ss.step_slug, ss.step_index, ss.step_type from pgflow.step_states ss
                 where ss.run_id = run.run_id) ss using (step_slug)
      where s.step_index is distinct from ss.step_index
         or s.step_type is distinct from ss.step_type)
    into same;
  end if;
  if same is not true then
    perform pgflow._raise('PGF11', format(
      'run %s of flow %L cannot be retried: the flow''s shape changed since the run started '
      || '(run checksum %s, deployed checksum %s)', run.run_id, run.flow_slug,
      coalesce(run.flow_checksum, 'not recorded'), coalesce(deployed, 'none: not deployed')),
      'Its completed steps cannot be matched to the flow as it is now: start a new run '
      || 'instead (`pgflow start SLUG`). Flows are immutable; a shape changes only when '
      || '`pgflow deploy --dev` recreates a flow.');
  end if;
end;
$$;
