-- 0002_hardening: from the released 0001 schema to the hardened one. The schema files that
-- follow this delta in the generated migration re-create every function (with a search_path
-- that callers' pg_temp objects cannot shadow), table, index and grant; this part only does
-- what `create ... if not exists` and `create or replace` cannot.

-- New columns (appended, as the schema files list them last).
alter table pgflow.runs
  add column if not exists flow_checksum text,
  add column if not exists input_bytes bigint,
  add column if not exists output_bytes bigint;
alter table pgflow.step_states
  add column if not exists output_bytes bigint;
alter table pgflow.step_tasks
  add column if not exists input_bytes bigint,
  add column if not exists output_bytes bigint,
  add column if not exists releases int not null default 0;

-- Functions whose signature changed: the old ones must not linger beside the new ones.
drop function if exists pgflow._tasks_done(uuid, text, int, jsonb);
drop function if exists pgflow._check_same_step(pgflow.flows, text, jsonb);
drop function if exists pgflow._check_declared_step(pgflow.flows, text, jsonb, int);

-- Rows an older version could leave behind: tasks and step states whose run is gone (a
-- deploy --dev racing a completion), and live tasks of finished runs (a cancel racing a
-- completion). Neither may ever be claimed.
delete from pgflow.step_tasks t
where not exists (select 1 from pgflow.runs r where r.run_id = t.run_id);
delete from pgflow.step_states ss
where not exists (select 1 from pgflow.runs r where r.run_id = ss.run_id);
update pgflow.step_tasks t set status = 'cancelled', cancelled_at = now(), leased_until = null
where t.status in ('queued', 'started')
  and exists (select 1 from pgflow.runs r where r.run_id = t.run_id and r.status <> 'started');

-- Fair-queuing tags: a task still waiting for its time now waits with priority_at NULL
-- until claim_tasks tags it; ready tasks keep their tags.
alter table pgflow.step_tasks alter column priority_at drop not null;
update pgflow.step_tasks t set priority_at = null
where t.status = 'queued' and t.available_at > now();
