-- Schedules: cron timetables that start runs of a flow (runtime configuration, not shape).
-- One row per (flow, name). Written by set_schedules (deploy, compiled SQL), read by workers,
-- which compute due ticks from `cron` in `timezone` and start each tick once through
-- start_scheduled. `last_tick` is the newest tick started (or skipped by the catch-up policy);
-- NULL until the first one, when ticks after `created_at` are due.
create table if not exists pgflow.schedules (
  flow_slug text not null references pgflow.flows (flow_slug) on delete cascade,
  name text not null check (pgflow.is_valid_slug(name)),
  cron text not null check (length(cron) between 1 and 200),
  timezone text not null default 'UTC' check (length(timezone) between 1 and 100),
  input jsonb not null default 'null',
  catch_up text not null default 'latest' check (catch_up in ('latest', 'all', 'none')),
  paused boolean not null default false,
  last_tick timestamptz,
  created_at timestamptz not null default pgflow._now(),
  updated_at timestamptz not null default pgflow._now(),
  primary key (flow_slug, name)
);
