-- Events (LISTEN/NOTIFY).
--
-- * Channel `pgflow_tasks`, payload = flow slug: tasks of that flow just became claimable.
--   Workers LISTEN here, so a dependent step's task is claimed within milliseconds.
-- * Channel `pgflow_cancelled`, payload = run id: live tasks of that run were cancelled
--   (_signal_cancelled); workers LISTEN here too, so running handlers see ctx.cancelled.
-- * Channel `pgflow_run_<run_id>`: run and step status changes of one run, as JSON
--   {"event": "run:completed" | "step:<slug>:started" ..., "run_id", "flow_slug",
--   "step_slug", "status"}. Outputs are never inlined, so payloads stay far below the
--   8000-byte NOTIFY limit (slugs are at most 128 characters); readers fetch them with
--   get_run_with_states. Notifications are delivered at commit, and identical ones inside
--   one transaction are merged by Postgres.
-- Both are plpgsql rather than SQL functions: plpgsql caches its plans, and these run on
-- every state change.
create or replace function pgflow._emit(
  run_id uuid, flow_slug text, event text, status text, step_slug text default null
)
returns void
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
as $$
begin
  perform pg_notify('pgflow_run_' || run_id::text, jsonb_build_object(
    'event', event, 'run_id', run_id, 'flow_slug', flow_slug,
    'step_slug', step_slug, 'status', status)::text);
end;
$$;

create or replace function pgflow._wake_workers(flow_slug text)
returns void
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
as $$
begin
  perform pg_notify('pgflow_tasks', flow_slug);
end;
$$;
