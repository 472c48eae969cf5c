-- _finish_run(run_id, status, error_message): terminalise a run and everything it still
-- has in flight (tasks, then steps, then the run: the documented lock order), so nothing
-- of a dead run is ever claimed again. No-op on a run that is already terminal.
create or replace function pgflow._finish_run(run_id uuid, status text, error_message text)
returns void
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
set enable_seqscan = off
as $$
declare
  flow text;
begin
  perform pgflow._cancel_live_tasks(run_id);
  update pgflow.step_states ss set status = 'cancelled', cancelled_at = pgflow._now()
  where ss.run_id = _finish_run.run_id and ss.status in ('created', 'started');
  update pgflow.runs r set
    status = _finish_run.status,
    error_message = _finish_run.error_message,
    failed_at = case when _finish_run.status = 'failed' then pgflow._now() end,
    cancelled_at = case when _finish_run.status = 'cancelled' then pgflow._now() end,
    finished_at = pgflow._now()
  where r.run_id = _finish_run.run_id and r.status = 'started'
  returning r.flow_slug into flow;
  if found then
    -- Again, in statements of their own: a completion that this transaction waited for
    -- (on a task, step or the run row) may have queued tasks the first pass could not see.
    -- Rows locked by someone else now are skipped, not waited for (we hold the run row:
    -- waiting could deadlock); claim_tasks never hands out a task of a finished run.
    update pgflow.step_tasks t set status = 'cancelled', cancelled_at = pgflow._now(),
      leased_until = null
    where t.run_id = _finish_run.run_id and t.ctid = any(array(
      select x.ctid from pgflow.step_tasks x
      where x.run_id = _finish_run.run_id and x.status in ('queued', 'started')
      for update skip locked));
    if found then
      perform pgflow._signal_cancelled(run_id);
    end if;
    update pgflow.step_states ss set status = 'cancelled', cancelled_at = pgflow._now()
    where ss.run_id = _finish_run.run_id and ss.ctid = any(array(
      select x.ctid from pgflow.step_states x
      where x.run_id = _finish_run.run_id and x.status in ('created', 'started')
      for update skip locked));
    perform pgflow._emit(run_id, flow, 'run:' || status, status);
  end if;
end;
$$;
