-- cancelled_attempts(run_ids, step_slugs, task_indexes, attempts): of the task attempts a
-- worker is running (parallel arrays), those that may no longer run: the task was cancelled
-- (its run was cancelled or failed, its step skipped), its lease was taken over by a later
-- attempt, it went back to the queue, or its row is gone (the run was pruned or its flow
-- deleted). A worker calls it when `pgflow_cancelled` names one of its runs, and
-- periodically as a fallback for missed notifications; their handlers see ctx.cancelled
-- and their results are discarded. Attempts still running under their lease are not
-- returned. NULL arrays return nothing; the arrays must have the same length (unnest pads
-- the shorter ones with NULL, and a NULL key matches no row, so it is returned).
-- Read-only, no locks beyond a snapshot: primary-key lookups, one per attempt.
create or replace function pgflow.cancelled_attempts(
  run_ids uuid[], step_slugs text[], task_indexes int[], attempts int[]
)
returns table (run_id uuid, step_slug text, task_index int, attempt int)
language sql
stable
security definer
set search_path = pg_catalog, pg_temp
as $$
  select k.run_id, k.step_slug, k.task_index, k.attempt
  from unnest(run_ids, step_slugs, task_indexes, attempts)
    as k(run_id, step_slug, task_index, attempt)
  left join pgflow.step_tasks t
    on t.run_id = k.run_id and t.step_slug = k.step_slug and t.task_index = k.task_index
  where t.run_id is null or t.status <> 'started' or t.attempts_count is distinct from k.attempt;
$$;
