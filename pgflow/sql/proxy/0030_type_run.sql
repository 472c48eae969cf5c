-- pgflow_proxy.run: what start_flow, cancel_run, retry_run and list_runs return through the
-- proxy: a run's public columns, as in pgflow.runs of a shard (same names and types).
-- New attributes are appended with `alter type ... add attribute` in a later section.
do $$
begin
  if to_regtype('pgflow_proxy.run') is null then
    create type pgflow_proxy.run as (
      run_id uuid,
      flow_slug text,
      status text,
      input jsonb,
      output jsonb,
      error_message text,
      remaining_steps int,
      started_at timestamptz,
      completed_at timestamptz,
      failed_at timestamptz,
      cancelled_at timestamptz,
      finished_at timestamptz,
      priority int
    );
  end if;
end;
$$;
