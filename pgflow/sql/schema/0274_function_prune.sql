-- prune(older_than, flow_slug, statuses, batch_size): delete finished runs that finished
-- more than `older_than` ago, with their step states and tasks; returns how many runs.
-- Live runs are never touched. flow_slug and statuses narrow the choice as in prune_batch;
-- batch_size NULL (the default) deletes every such run in this one call, so prune('30 days')
-- works as it always did. To keep transactions short, pass a batch_size and call again until
-- it returns less than that (what `pgflow prune` does, one transaction per batch).
-- Without flow_slug and statuses, whole months of history whose every run qualifies are
-- dropped as well (drop_history_partitions), whatever batch_size says.
create or replace function pgflow.prune(
  older_than interval,
  flow_slug text default null,
  statuses text[] default null,
  batch_size int default null
)
returns int
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  dropped int := 0;
begin
  if prune.flow_slug is null and prune.statuses is null and prune.older_than >= interval '0' then
    select coalesce(sum(d.runs), 0)::int into dropped
    from pgflow._drop_history_partitions(prune.older_than) d;
  end if;
  return dropped + (select coalesce(sum(p.runs), 0)::int
    from pgflow.prune_batch(prune.older_than, prune.flow_slug, prune.statuses,
      prune.batch_size) p);
end;
$$;
