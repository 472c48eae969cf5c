-- _queue_head(flow_slug): the fair-queuing tag (step_tasks.priority_at) for a task of this
-- flow that becomes ready now: the flow's oldest ready tag, or now() when that is later or
-- the queue is empty. A newcomer thus queues beside the head of the line rather than behind
-- every task already waiting, so one run's big map or backlog delays another run by at
-- most one claim (ties go to the older task). One probe of step_tasks_ready.
-- plpgsql, not SQL: a SQL function with a SET clause is never inlined, and before
-- PostgreSQL 18 it plans its query on every call; plpgsql keeps the plan.
create or replace function pgflow._queue_head(flow_slug text)
returns timestamptz
language plpgsql
stable
set search_path = pg_catalog, pg_temp
as $$
begin
  return least(pgflow._now(), coalesce((
    select t.priority_at from pgflow.step_tasks t
    where t.flow_slug = _queue_head.flow_slug and t.status = 'queued'
      and t.priority_at is not null
    order by t.priority_at
    limit 1), pgflow._now()));
end;
$$;
