-- Named queries of the run viewer (pgflow ui). Read-only: every one works under the
-- pgflow_reader role (SELECT on the tables). Values over %(cap)s bytes are replaced by the
-- marker {"$truncated": true, "bytes": N} in SQL, so a huge value is never sent to the viewer;
-- sizes are the ones recorded when the value was written (else its stored size).

-- name: ui_flows
-- Deployed flows with their checksum, creation time and run counts by status (one scan of runs).
select f.flow_slug, coalesce(f.checksum, '') as checksum, f.status, f.created_at,
  coalesce(r.runs, '{}'::jsonb) as runs
from pgflow.flows f
left join (
  select c.flow_slug, jsonb_object_agg(c.status, c.n) as runs
  from (select x.flow_slug, x.status, count(*) as n from pgflow.runs x
        group by x.flow_slug, x.status) c
  group by c.flow_slug
) r on r.flow_slug = f.flow_slug
order by f.flow_slug;

-- name: ui_flow_slugs
-- The slugs of the deployed flows (the runs page's flow filter).
select f.flow_slug from pgflow.flows f order by f.flow_slug;

-- name: ui_flow_steps
-- The steps of every deployed flow (or of one), in definition order, with their dependencies.
select s.flow_slug, s.step_slug, s.step_index, s.step_type,
  array(select d.dep_slug from pgflow.deps d
        where d.flow_slug = s.flow_slug and d.step_slug = s.step_slug
        order by d.dep_slug) as deps
from pgflow.steps s
where %(flow_slug)s::text is null or s.flow_slug = %(flow_slug)s::text
order by s.flow_slug, s.step_index;

-- name: ui_runs
-- Runs newest first, filtered by flow, status and start time, older than a cursor; no values.
-- Walks runs_by_started (runs_by_flow with a flow): O(limit + skipped rows).
select r.run_id, r.flow_slug, r.status, left(r.error_message, 300) as error_message,
  r.started_at, r.finished_at, r.remaining_steps,
  (select count(*) from pgflow.step_states ss where ss.run_id = r.run_id)::int as steps
from pgflow.runs r
where (%(flow_slug)s::text is null or r.flow_slug = %(flow_slug)s::text)
  and (%(status)s::text is null or r.status = %(status)s::text)
  and r.started_at >= coalesce(%(since_at)s::timestamptz, now() - %(since_ago)s::interval,
    '-infinity'::timestamptz)
  and r.started_at < coalesce(%(before)s::timestamptz, 'infinity'::timestamptz)
order by r.started_at desc, r.run_id
limit %(limit)s::int;

-- name: ui_run
-- One run (no row: unknown), its input and output capped at %(cap)s bytes each.
select r.run_id, r.flow_slug, r.status, r.error_message, r.remaining_steps,
  r.started_at, r.finished_at, now() as now,
  coalesce(r.input_bytes, pg_column_size(r.input)) as input_bytes,
  case when coalesce(r.input_bytes, pg_column_size(r.input)) <= %(cap)s then r.input
       else jsonb_build_object('$truncated', true,
         'bytes', coalesce(r.input_bytes, pg_column_size(r.input))) end as input,
  coalesce(r.output_bytes, pg_column_size(r.output)) as output_bytes,
  case when r.output is null then null
       when coalesce(r.output_bytes, pg_column_size(r.output)) <= %(cap)s then r.output
       else jsonb_build_object('$truncated', true,
         'bytes', coalesce(r.output_bytes, pg_column_size(r.output))) end as output
from pgflow.runs r
where r.run_id = %(run_id)s::uuid;

-- name: ui_run_steps
-- The steps of a run in definition order: state, dependencies, output (capped), and their
-- tasks summarised (count by status, attempts, first claim, last finish): O(tasks) once.
-- Attempts count the handler runs that may have happened: claims given back unrun by a
-- stopping worker (releases) are not attempts.
select ss.step_slug, ss.step_index, ss.status, s.step_type,
  array(select d.dep_slug from pgflow.deps d
        where d.flow_slug = ss.flow_slug and d.step_slug = ss.step_slug
        order by d.dep_slug) as deps,
  ss.initial_tasks, ss.error_message, ss.skip_reason, ss.started_at,
  coalesce(ss.completed_at, ss.failed_at, ss.skipped_at, ss.cancelled_at) as finished_at,
  coalesce(ss.output_bytes, pg_column_size(ss.output)) as output_bytes,
  case when ss.output is null then null
       when coalesce(ss.output_bytes, pg_column_size(ss.output)) <= %(cap)s then ss.output
       else jsonb_build_object('$truncated', true,
         'bytes', coalesce(ss.output_bytes, pg_column_size(ss.output))) end as output,
  coalesce(tk.tasks, '{}'::jsonb) as tasks, coalesce(tk.attempts, 0) as attempts,
  tk.first_claimed_at, tk.last_finished_at
from pgflow.step_states ss
join pgflow.steps s on s.flow_slug = ss.flow_slug and s.step_slug = ss.step_slug
left join lateral (
  select jsonb_object_agg(g.status, g.n) as tasks, max(g.attempts)::int as attempts,
    min(g.first_claimed_at) as first_claimed_at, max(g.last_finished_at) as last_finished_at
  from (select t.status, count(*) as n, max(t.attempts_count - t.releases) as attempts,
          min(t.started_at) as first_claimed_at,
          max(coalesce(t.completed_at, t.failed_at, t.cancelled_at)) as last_finished_at
        from pgflow.step_tasks t
        where t.run_id = ss.run_id and t.step_slug = ss.step_slug
        group by t.status) g
) tk on true
where ss.run_id = %(run_id)s::uuid
order by ss.step_index;

-- name: ui_run_errors
-- Tasks of a run that failed or are waiting to retry after an error: failed first, then in
-- step and task order, at most %(limit)s, tracebacks cut at %(traceback_chars)s characters.
select t.step_slug, t.task_index, t.status, t.attempts_count - t.releases as attempts,
  t.error_type,
  left(t.error_message, %(message_chars)s) as error_message,
  left(t.error_traceback, %(traceback_chars)s) as error_traceback,
  coalesce(length(t.error_traceback), 0) as traceback_length,
  coalesce(t.failed_at, t.cancelled_at, t.queued_at) as at
from pgflow.step_tasks t
join pgflow.step_states ss on ss.run_id = t.run_id and ss.step_slug = t.step_slug
where t.run_id = %(run_id)s::uuid and t.error_message is not null and t.status <> 'completed'
order by t.status <> 'failed', ss.step_index, t.task_index
limit %(limit)s::int;
