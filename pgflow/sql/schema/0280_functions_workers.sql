-- Workers: registration and heartbeats (for inspection: who is alive, what it polls) and
-- the graceful-shutdown release. Claiming never requires registration.

-- register_worker(worker_id, flow_slugs, hostname, pid): announce a worker (upsert).
create or replace function pgflow.register_worker(
  worker_id uuid, flow_slugs text[], hostname text default null, pid int default null
)
returns pgflow.workers
language sql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
  insert into pgflow.workers as w (worker_id, flow_slugs, hostname, pid)
  values (worker_id, coalesce(flow_slugs, '{}'), hostname, pid)
  on conflict (worker_id) do update set
    flow_slugs = excluded.flow_slugs, hostname = excluded.hostname, pid = excluded.pid,
    last_heartbeat_at = pgflow._now(), stopped_at = null
  returning *;
$$;

-- heartbeat(worker_id): the worker is alive. Returns false for an unknown worker.
-- Also renews the worker's task listener registrations that are still live (listen_tasks:
-- each by its own ttl; one that already expired is left to listen_tasks, which tells the
-- worker that it lapsed) and deletes a few expired registrations (_forget_listeners).
create or replace function pgflow.heartbeat(worker_id uuid)
returns boolean
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
begin
  update pgflow.listeners l set expires_at = pg_catalog.now() + l.ttl
  where l.listener_id = heartbeat.worker_id and l.flow_slug is not null
    and l.expires_at > pg_catalog.now();
  perform pgflow._forget_listeners(10);
  update pgflow.workers w set last_heartbeat_at = pgflow._now()
  where w.worker_id = heartbeat.worker_id;
  return found;
end;
$$;

-- release_tasks(worker_id): a worker shutting down gives back the tasks it still holds.
-- They are re-queued at once (tagged by the next claim) and the release does not use up
-- max_attempts; the attempt number stays taken, so the next claim gets a new one and a
-- late report from the released claim is fenced out. Returns how many.
create or replace function pgflow.release_tasks(worker_id uuid)
returns int
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  flows text[];
  n int;
begin
  with released as (
    update pgflow.step_tasks t set
      status = 'queued', releases = t.releases + 1, worker_id = null,
      leased_until = null, started_at = null, available_at = pgflow._now(),
      priority_at = null
    where t.worker_id = release_tasks.worker_id and t.status = 'started'
      and t.leased_until is not null  -- walk the index of live leases, not the table
    returning t.flow_slug
  )
  select array_agg(distinct r.flow_slug), count(*)::int into flows, n from released r;
  perform pgflow._wake_workers(f) from unnest(flows) as f;
  return n;
end;
$$;

-- worker_stopped(worker_id): mark a worker as stopped and remove its listener
-- registrations (listen_tasks), so nothing notifies for it any more.
create or replace function pgflow.worker_stopped(worker_id uuid)
returns void
language sql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
  delete from pgflow.listeners l where l.listener_id = worker_stopped.worker_id;
  update pgflow.workers w set stopped_at = pgflow._now()
  where w.worker_id = worker_stopped.worker_id;
$$;
