-- listeners: who can be woken by a notification, so that transactions notify only then.
--
-- A transaction that calls pg_notify takes a database-wide lock at commit and holds it
-- through its WAL flush, so notifying commits cannot share a group commit. The engine
-- therefore notifies only when someone is listening (_emit and _wake_workers,
-- 0200_function_events.sql, where the lost-wake-up-free protocol is explained):
-- * a run listener (run_id set) watches the events of one run on `pgflow_run_<run_id>`;
--   the nil UUID 00000000-0000-0000-0000-000000000000 watches every run;
-- * a task listener (flow_slug set) waits on `pgflow_tasks` for tasks of one flow ('*':
--   every flow). A worker that LISTENs registers one row per flow it serves
--   (listen_tasks); claim_tasks keeps `waiting` current: false while the worker's last
--   claim was full (it claims again as soon as it has room, so waking it is useless), true
--   after a short one. Its listener_id is its worker_id.
-- Exactly one of run_id and flow_slug is set. A row lives until expires_at (the wall clock,
-- not pgflow._now(): a test clock moved forward must not silence running processes);
-- registrations are renewed before then (heartbeat, watch_run again) and removed when done
-- (unwatch, worker_stopped). A row left by a process that died only costs notifications
-- until it expires, and expired rows are deleted a few at a time (_forget_listeners).
--
-- One row per (listener, run) and per (listener, flow), so that every check a notifier
-- makes is one index probe that starts at the live rows, whatever else the table holds:
-- rows of other runs or flows, or many rows that expired and are not deleted yet, never
-- make a notifier slower.
create table if not exists pgflow.listeners (
  listener_id uuid not null,
  run_id uuid,
  flow_slug text check (flow_slug = '*' or pgflow.is_valid_slug(flow_slug)),
  waiting boolean not null default true,
  expires_at timestamptz not null,
  -- how long each renewal extends the registration (heartbeat renews a worker's rows)
  ttl interval not null check (ttl between interval '1 second' and interval '1 day'),
  check (num_nonnulls(run_id, flow_slug) = 1)
);

-- the registration's key: (listener, run) or (listener, flow); also unwatch and the
-- `waiting` update of claim_tasks (by listener_id)
create unique index if not exists listeners_key
  on pgflow.listeners (listener_id, (coalesce(run_id::text, flow_slug)));
-- _emit: is a live listener watching this run (or every run)?
create index if not exists listeners_runs on pgflow.listeners (run_id, expires_at)
  where run_id is not null;
-- _wake_workers: is a live task listener of this flow (or every flow) waiting, and is any
-- registered at all (waiting = any('{t,f}'): two ranges of the same index)?
create index if not exists listeners_flows on pgflow.listeners (flow_slug, waiting, expires_at)
  where flow_slug is not null;
-- _forget_listeners: the rows that expired first
create index if not exists listeners_expiry on pgflow.listeners (expires_at);

-- An upgrade from a version whose processes LISTEN without registering: while live workers
-- of the database have no registration (they run the earlier version), keep every
-- notification for an hour, so that they and the clients of that version keep being woken
-- during the rollout. The listener 00000000-0000-0000-0000-000000000000 of every flow and
-- every run stands for them (pgflow.unwatch removes it). Fresh installs have no workers,
-- and workers of this version register, so later upgrades add nothing.
insert into pgflow.listeners (listener_id, run_id, flow_slug, expires_at, ttl)
select '00000000-0000-0000-0000-000000000000'::uuid, k.run_id, k.flow_slug,
  pg_catalog.now() + interval '1 hour', interval '1 hour'
from (values ('00000000-0000-0000-0000-000000000000'::uuid, null::text), (null, '*'))
  as k (run_id, flow_slug)
where exists (
  select 1 from pgflow.workers w
  where w.stopped_at is null and w.last_heartbeat_at > pgflow._now() - interval '5 minutes'
    and not exists (select 1 from pgflow.listeners l where l.listener_id = w.worker_id))
on conflict do nothing;
