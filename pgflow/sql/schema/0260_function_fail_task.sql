-- fail_task(run_id, step_slug, task_index, error_message, attempt, error_type,
--           error_traceback): report a failed attempt (pgflow's parameter names, plus the
-- optional `attempt` fence and the exception's type and traceback).
-- * Only a task still leased to that attempt is affected; anything else (late, duplicate,
--   stale) changes nothing and returns the current row.
-- * With attempts left (max_attempts counts the first one; attempts a stopping worker gave
--   back unrun, and those before a retry_run, do not count) the task is re-queued after
--   base_delay * 2^n seconds for the n-th failure, capped at one hour (the exponent is
--   capped too, so no attempt count can overflow it). Step options override flow options.
--   It waits with priority_at NULL until claim_tasks tags it (see _tag_due_tasks).
--   failed_at records when this attempt failed (the time of a task:retried event; the
--   task's status, not failed_at, says whether it failed for good).
-- * Exhausted: the task fails and the step's when_exhausted decides: 'fail' fails the run
--   (every other live task and step of the run is cancelled), 'skip' skips the step
--   (dependents run without its key), 'skip-cascade' skips it and all its descendants.
create or replace function pgflow.fail_task(
  run_id uuid, step_slug text, task_index int, error_message text,
  attempt int default null, error_type text default null, error_traceback text default null
)
returns pgflow.step_tasks
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
-- every statement inside is an index lookup: a generic plan is right and saves re-planning
set plan_cache_mode = force_generic_plan
set enable_seqscan = off
as $$
begin
  return pgflow._fail_task(run_id, step_slug, task_index, attempt, error_message, error_type,
    error_traceback);
end;
$$;

-- fail_tasks(...): the batch form of fail_task, in primary-key order. Returns current rows.
create or replace function pgflow.fail_tasks(
  run_ids uuid[], step_slugs text[], task_indexes int[], error_messages text[],
  attempts int[] default null, error_types text[] default null,
  error_tracebacks text[] default null
)
returns setof pgflow.step_tasks
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
set enable_seqscan = off
as $$
declare
  r record;
begin
  for r in
    select * from unnest(run_ids, step_slugs, task_indexes, error_messages, attempts,
      error_types, error_tracebacks) as x(run_id, step_slug, task_index, msg, attempt, typ, tb)
    order by x.run_id, x.step_slug, x.task_index
  loop
    return next pgflow._fail_task(r.run_id, r.step_slug, r.task_index, r.attempt, r.msg, r.typ,
      r.tb);
  end loop;
end;
$$;

create or replace function pgflow._fail_task(
  run_id uuid, step_slug text, task_index int, attempt int, error_message text,
  error_type text, error_traceback text
)
returns pgflow.step_tasks
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
set enable_seqscan = off
as $$
declare
  t pgflow.step_tasks;
  max_attempts int;
  base_delay int;
  when_exhausted text;
  delay numeric;
  failures int;
  msg text := coalesce(error_message, 'unknown error');
  skipped int;
begin
  select x.* into t from pgflow.step_tasks x
  where x.run_id = _fail_task.run_id and x.step_slug = _fail_task.step_slug
    and x.task_index = _fail_task.task_index
  for update;
  if not found or t.status <> 'started'
     or (attempt is not null and t.attempts_count <> attempt) then
    return t;
  end if;
  select coalesce(s.opt_max_attempts, f.opt_max_attempts),
         coalesce(s.opt_base_delay, f.opt_base_delay), s.when_exhausted
  into max_attempts, base_delay, when_exhausted
  from pgflow.steps s join pgflow.flows f on f.flow_slug = s.flow_slug
  where s.flow_slug = t.flow_slug and s.step_slug = t.step_slug;

  failures := t.attempts_count - t.releases - t.forgiven_attempts;
  if failures < max_attempts then
    delay := least(base_delay * power(2::numeric, least(greatest(failures, 0), 12)), 3600);
    update pgflow.step_tasks x set
      status = 'queued', leased_until = null, worker_id = null, failed_at = pgflow._now(),
      available_at = pgflow._now() + make_interval(secs => delay),
      priority_at = null,
      error_message = msg, error_type = _fail_task.error_type,
      error_traceback = _fail_task.error_traceback
    where x.run_id = t.run_id and x.step_slug = t.step_slug and x.task_index = t.task_index
    returning * into t;
    if delay = 0 then
      perform pgflow._wake_workers(t.flow_slug);
    end if;
    return t;
  end if;

  update pgflow.step_tasks x set
    status = 'failed', leased_until = null, failed_at = pgflow._now(), error_message = msg,
    error_type = _fail_task.error_type, error_traceback = _fail_task.error_traceback
  where x.run_id = t.run_id and x.step_slug = t.step_slug and x.task_index = t.task_index
  returning * into t;
  msg := format('%s%s (attempt %s of %s%s)', coalesce(_fail_task.error_type || ': ', ''),
    msg, failures, max_attempts,
    case when t.task_index > 0 or t.input is not null
      then format(', map task %s', t.task_index) else '' end);
  if when_exhausted = 'fail' then
    perform pgflow._fail_step(t.run_id, t.step_slug, msg);
  else
    skipped := pgflow._skip_step(t.run_id, t.step_slug, 'retries exhausted: ' || msg,
      when_exhausted = 'skip-cascade');
    perform pgflow._advance_run(t.run_id, skipped, true);
  end if;
  select x.* into t from pgflow.step_tasks x
  where x.run_id = _fail_task.run_id and x.step_slug = _fail_task.step_slug
    and x.task_index = _fail_task.task_index;
  return t;
end;
$$;
