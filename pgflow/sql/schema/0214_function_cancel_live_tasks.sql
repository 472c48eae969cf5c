-- _cancel_live_tasks(run_id, step_slug): cancel the queued and started tasks of a run (or
-- of one of its steps). Always the first lock a terminalising function takes, keeping the
-- tasks -> steps -> run order. Late reports for these tasks then change nothing, and the
-- workers running them are told (_signal_cancelled) so their handlers see ctx.cancelled.
create or replace function pgflow._cancel_live_tasks(run_id uuid, step_slug text default null)
returns void
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
set enable_seqscan = off
as $$
begin
  update pgflow.step_tasks t
  set status = 'cancelled', cancelled_at = pgflow._now(), leased_until = null
  where t.run_id = _cancel_live_tasks.run_id and t.status in ('queued', 'started')
    and (_cancel_live_tasks.step_slug is null or t.step_slug = _cancel_live_tasks.step_slug);
  if found then
    perform pgflow._signal_cancelled(run_id);  -- handlers still running them stop early
  end if;
end;
$$;
