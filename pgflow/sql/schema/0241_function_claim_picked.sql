-- _claim_picked(worker_id, run_ids, step_slugs, task_indexes, limit_bytes): claim_tasks'
-- second half: lease the picked tasks (attempts_count + 1, the lease, the worker) and return
-- each with its run's status, inputs, trace context and claim lag, in claim order.
-- Every table here is read by key, and only bitmap scans are allowed: an index scan could
-- walk a whole index with the key as a filter instead. The planner picks that when a
-- partition's statistics say it is empty (ANALYZE after pruning it empty): both cost the
-- same on an empty table, and the plan, cached for the session, then read every run of the
-- partition for each claimed task once it filled up again (measured: 3,000 run rows per task
-- with 3,000 runs; the claim of a drain 6x slower). A bitmap scan needs the key as an index
-- condition, so it cannot.
create or replace function pgflow._claim_picked(
  worker_id uuid, run_ids uuid[], step_slugs text[], task_indexes int[], limit_bytes bigint
)
returns table (
  run_id uuid, flow_slug text, step_slug text, task_index int, attempts_count int,
  input_bytes bigint, leased_until timestamptz, run_status text, flow_input jsonb,
  trace_context jsonb, claim_lag double precision, input jsonb
)
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
set plan_cache_mode = force_generic_plan
set enable_indexscan = off
set enable_indexonlyscan = off
set enable_seqscan = off
set enable_hashjoin = off
set enable_mergejoin = off
as $$
#variable_conflict use_column
begin
  return query
      with claimed as (
        update pgflow.step_tasks t set
          status = 'started',
          attempts_count = t.attempts_count + 1,
          started_at = pgflow._now(),
          worker_id = _claim_picked.worker_id,
          leased_until = pgflow._now() + make_interval(secs => coalesce((
            select coalesce(s.opt_timeout, f.opt_timeout)
            from pgflow.steps s join pgflow.flows f on f.flow_slug = s.flow_slug
            where s.flow_slug = t.flow_slug and s.step_slug = t.step_slug), 60))
        from unnest(_claim_picked.run_ids, _claim_picked.step_slugs,
          _claim_picked.task_indexes) as p(run_id, step_slug, task_index)
        where t.run_id = p.run_id and t.step_slug = p.step_slug and t.task_index = p.task_index
        returning t.run_id, t.flow_slug, t.step_slug, t.task_index, t.attempts_count, t.input,
          t.input_bytes, t.leased_until, t.priority_at, t.available_at
      )
      select c.run_id, c.flow_slug, c.step_slug, c.task_index, c.attempts_count, c.input_bytes,
        c.leased_until, r.status as run_status,
        -- not with map tasks (a million elements would carry it a million times): the worker
        -- fetches it on demand (task_flow_input)
        case when c.input is null then r.input end as flow_input,
        r.trace_context, extract(epoch from pgflow._now() - c.available_at)::float8 as claim_lag,
        case
          when c.input is not null then c.input  -- a map element
          when r.status is distinct from 'started'
            or c.input_bytes > _claim_picked.limit_bytes then null
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
      order by c.priority_at, c.task_index;
end;
$$;
