-- prune_batch(older_than, flow_slug, statuses, max_runs): delete up to max_runs finished
-- runs that finished more than `older_than` ago, oldest first, with their step states and
-- tasks and their stored values (pgflow.blobs; those of external stores are tombstoned for
-- the workers to delete); returns one row (flow, status, runs) per flow and status with the
-- number of runs deleted.
-- * Only finished runs: completed, failed and cancelled, or those of them named in
--   `statuses` (NULL: all three). Live (started) runs are never touched; naming 'started' or
--   an unknown status raises PGF08. flow_slug NULL means every flow.
-- * max_runs NULL means no limit. Callers that must keep transactions short (the CLI,
--   apply_retention) pass a batch size and call again, one transaction per batch.
-- * older_than NULL or negative raises PGF08.
-- Locks: the chosen run rows, skipping rows another transaction holds (a run being
-- retried, or one a concurrent prune is deleting), then their tasks and step states.
-- Walks runs_by_started (or runs_by_flow) from the oldest run, so a batch reads about as
-- many rows as it deletes.
create or replace function pgflow.prune_batch(
  older_than interval,
  flow_slug text default null,
  statuses text[] default null,
  max_runs int default 1000
)
returns table (flow text, status text, runs int)
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  wanted text[] := coalesce(prune_batch.statuses, array['completed', 'failed', 'cancelled']);
  cutoff timestamptz := pgflow._now() - prune_batch.older_than;
  bad text;
begin
  if prune_batch.older_than is null or prune_batch.older_than < interval '0' then
    perform pgflow._raise('PGF08', format('prune: older_than must be an interval of 0 or '
      || 'more, got %s', coalesce(prune_batch.older_than::text, 'NULL')),
      'Pass e.g. ''30 days''.');
  end if;
  select s into bad from unnest(wanted) as s
  where s is null or s not in ('completed', 'failed', 'cancelled') limit 1;
  if found then
    perform pgflow._raise('PGF08', format('prune: cannot prune runs with status %s',
      coalesce(quote_literal(bad), 'NULL')),
      'Name finished statuses only: completed, failed, cancelled (live runs are never pruned).');
  end if;
  if prune_batch.max_runs < 1 then
    perform pgflow._raise('PGF08', format('prune: max_runs must be at least 1, got %s',
      prune_batch.max_runs), 'Pass e.g. 1000, or NULL for no limit.');
  end if;
  return query
  with doomed as (
    -- a run that finished before the cut-off started before it too
    select r.run_id from pgflow.runs r
    where r.started_at < cutoff and r.finished_at < cutoff and r.status = any(wanted)
      and (prune_batch.flow_slug is null or r.flow_slug = prune_batch.flow_slug)
    order by r.started_at
    limit prune_batch.max_runs
    for update skip locked
  ), tasks as (
    delete from pgflow.step_tasks t using doomed d where t.run_id = d.run_id
  ), states as (
    delete from pgflow.step_states ss using doomed d where ss.run_id = d.run_id
  ), chunks as (
    delete from pgflow.blob_chunks c using doomed d where c.run_id = d.run_id
  ), blobs as (
    delete from pgflow.blobs b using doomed d where b.run_id = d.run_id
    returning b.store, b.run_id, b.blob_id
  ), tombstones as (
    insert into pgflow.blob_tombstones (store, run_id, blob_id)
    select x.store, x.run_id, x.blob_id from blobs x where x.store <> 'pg'
    on conflict do nothing
  ), gone as (
    delete from pgflow.runs r using doomed d where r.run_id = d.run_id
    returning r.flow_slug, r.status
  )
  select g.flow_slug, g.status, count(*)::int from gone g
  group by g.flow_slug, g.status order by g.flow_slug, g.status;
end;
$$;
