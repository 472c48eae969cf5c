-- cancel_run(run_id): cancel a live run and everything it has in flight (tasks, steps,
-- then the run). Cancelling a finished run changes nothing. Unknown run: PGF07.
create or replace function pgflow.cancel_run(run_id uuid)
returns pgflow.runs
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  result pgflow.runs;
begin
  perform pgflow._finish_run(run_id, 'cancelled', 'cancelled on request');
  select * into result from pgflow.runs r where r.run_id = cancel_run.run_id;
  if not found then
    perform pgflow._raise('PGF07', format('unknown run %s', run_id),
      'Check the run id; `pgflow runs` lists recent runs.');
  end if;
  return result;
end;
$$;
