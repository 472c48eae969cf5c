-- _queue_head(flow_slug, priority): the fair-queuing tag (step_tasks.priority_at) for a task
-- of this flow that becomes ready now: the flow's oldest ready tag, or now() when that is
-- later or the queue is empty. A newcomer thus queues beside the head of the line rather
-- than behind every task already waiting, so one run's big map or backlog delays another
-- run by at most one claim (ties go to the older task). One probe of step_tasks_ready.
-- Priorities: a run of priority p (-100..100, default 0) queues in its own band, "now" being
-- now() - p * 3650 days; the head is looked for from 1825 days before that. Higher
-- priorities thus sort before every tag of lower ones, and runs of one priority take turns
-- as above. NULL priority means 0.
-- plpgsql, not SQL: a SQL function with a SET clause is never inlined, and before
-- PostgreSQL 18 it plans its query on every call; plpgsql keeps the plan.
create or replace function pgflow._queue_head(flow_slug text, priority int default 0)
returns timestamptz
language plpgsql
stable
set search_path = pg_catalog, pg_temp
set enable_seqscan = off
as $$
declare
  band_now timestamptz := pgflow._now()
    - make_interval(secs => coalesce(_queue_head.priority, 0) * 315360000.0);
begin
  return least(band_now, coalesce((
    select t.priority_at from pgflow.step_tasks t
    where t.flow_slug = _queue_head.flow_slug and t.status = 'queued'
      and t.priority_at is not null
      and t.priority_at > band_now - make_interval(secs => 157680000.0)
    order by t.priority_at
    limit 1), band_now));
end;
$$;
