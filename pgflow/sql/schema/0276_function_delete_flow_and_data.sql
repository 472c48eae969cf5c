-- delete_flow_and_data(flow_slug): remove a flow, its definition and all its runs, with
-- their stored values (those of external stores are tombstoned for the workers to delete)
-- (development and tests). An unknown slug is a no-op.
-- Takes the flow's lock exclusively, so no run of it starts meanwhile (start_flow holds it
-- shared) and concurrent deployers serialise. Task and step rows go by flow_slug, so rows
-- whose run is already gone (left by an older version) go too; a second pass removes rows
-- queued by completions this transaction waited for. Scans step_tasks and step_states: a
-- development tool, not a hot path.
create or replace function pgflow.delete_flow_and_data(flow_slug text)
returns void
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
begin
  perform pg_advisory_xact_lock(hashtext('pgflow.flow:' || delete_flow_and_data.flow_slug));
  for pass in 1 .. 2 loop
    delete from pgflow.blob_chunks c using pgflow.runs r
    where r.flow_slug = delete_flow_and_data.flow_slug and c.run_id = r.run_id;
    with gone as (
      delete from pgflow.blobs b using pgflow.runs r
      where r.flow_slug = delete_flow_and_data.flow_slug and b.run_id = r.run_id
      returning b.store, b.run_id, b.blob_id
    )
    insert into pgflow.blob_tombstones (store, run_id, blob_id)
    select g.store, g.run_id, g.blob_id from gone g where g.store <> 'pg'
    on conflict do nothing;
    delete from pgflow.step_tasks t where t.flow_slug = delete_flow_and_data.flow_slug;
    delete from pgflow.step_states ss where ss.flow_slug = delete_flow_and_data.flow_slug;
    delete from pgflow.runs r where r.flow_slug = delete_flow_and_data.flow_slug;
  end loop;
  delete from pgflow.flows f where f.flow_slug = delete_flow_and_data.flow_slug;
end;
$$;
