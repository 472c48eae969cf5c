-- _signal_cancelled(run_id): tell workers that live tasks of a run were just cancelled (the
-- run was cancelled or failed, or a step was skipped while its tasks ran), so the handlers
-- still running them see ctx.cancelled. Channel `pgflow_cancelled`, payload = the run id;
-- delivered at commit, duplicates within one transaction merged by Postgres. A worker that
-- holds a task of that run asks cancelled_attempts which of its tasks may no longer run.
-- NULL run_id: nothing is sent. Takes no locks.
create or replace function pgflow._signal_cancelled(run_id uuid)
returns void
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
as $$
begin
  if run_id is not null then
    perform pg_notify('pgflow_cancelled', run_id::text);
  end if;
end;
$$;
