"""Eight worker processes through PgBouncer (transaction pooling), with PgBouncer going down.

Four workers LISTEN over a direct ``PGFLOW_LISTEN_URL``, four have none and poll. Clients
start and wait through PgBouncer too. The load mixes chains, maps, a step that fails its
first attempt and a flow whose runs fail as designed; in the middle of it PgBouncer is
killed and started again on the same port. Afterwards every run completed exactly once
with the right output (:func:`tests.faults.audit.check_invariants`) or failed as designed,
and PgBouncer multiplexed some 60 client connections onto its 4 server connections.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import psycopg

from pgflow import Client
from pgflow.deploy import deploy_flows
from pgflow.testing.pgbouncer import PgBouncer
from tests.faults.audit import Figures, check_invariants, install_audit
from tests.faults.fleet import Fleet
from tests.faults.flows import chain, expected_output, fanout
from tests.faults.test_kill_and_restart import wait_for_progress, wait_until_finished
from tests.integration.scaling.flows import FLOWS, doomed, flaky

DEADLINE = 120.0  # seconds; generous on a loaded 2-core machine
POOL_SIZE = 4
LISTENERS = 4


def load() -> list[tuple[str, Any]]:
    runs: list[tuple[str, Any]] = [(chain.slug, {"n": i}) for i in range(40)]
    runs += [(fanout.slug, list(range(k, k + 60))) for k in (0, 5)]
    runs += [(flaky.slug, {"n": i}) for i in range(20)]
    return runs + [(doomed.slug, {"n": i}) for i in range(6)]


def expected(slug: str, payload: Any) -> Any:
    return {"shaky": payload["n"] * 10} if slug == flaky.slug else expected_output(slug, payload)


class Backends(threading.Thread):
    """Samples the most server sessions the workers hold on the database at once."""

    def __init__(self, url: str) -> None:
        super().__init__(name="backends", daemon=True)
        self.url, self.most, self._done = url, 0, threading.Event()

    def run(self) -> None:
        with psycopg.connect(self.url, autocommit=True) as conn:
            while not self._done.wait(0.05):
                row = conn.execute(
                    "select count(*) from pg_stat_activity where datname = current_database() "
                    "and backend_type = 'client backend' and pid <> pg_backend_pid()"
                ).fetchone()
                self.most = max(self.most, row[0] if row else 0)

    def stop(self) -> None:
        self._done.set()
        self.join(5)


def outage(bouncer: PgBouncer, seconds: float = 1.0) -> None:
    """Kill PgBouncer (every client connection drops), then start it again."""
    bouncer.stop()
    time.sleep(seconds)  # the outage itself, not a synchronisation
    bouncer.start()


def still_down(*fleets: Fleet) -> list[str]:
    """The workers whose last outage line is "database unavailable" (no end logged yet)."""
    down = []
    for fleet in fleets:
        for path in sorted(fleet.logs.glob("worker-*.log")):
            text = path.read_text(errors="replace")
            if text.rfind("database unavailable") > text.rfind("database available again"):
                down.append(str(path))
    return down


def wait_recovered(deadline: float, *fleets: Fleet) -> None:
    """Wait until every worker that logged an outage logged its end (a readiness bound)."""
    while still_down(*fleets):
        assert time.monotonic() < deadline, still_down(*fleets)
        time.sleep(0.1)


def check_doomed(url: str, runs: int) -> None:
    """The doomed runs failed as designed, after two attempts; then they are removed."""
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            "select r.status, t.status, t.attempts_count, t.error_message "
            "from pgflow.runs r join pgflow.step_tasks t using (run_id) where r.flow_slug = %s",
            [doomed.slug],
        ).fetchall()
        assert len(rows) == runs
        for run_status, task_status, attempts, message in rows:
            assert (run_status, task_status, attempts) == ("failed", "failed", 2)
            # the handler's error, or the lease's if PgBouncer's outage held up the report
            assert "this step always fails" in message or "lease expired" in message
        conn.execute("select pgflow.delete_flow_and_data(%s)", [doomed.slug])


def test_eight_workers_through_pgbouncer_lose_nothing_across_its_outage(
    db_url: str, bouncer: PgBouncer, pooled_url: str, tmp_path: Path
) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        deploy_flows(conn, list(FLOWS), dev=True)
    install_audit(db_url)
    runs, want, figures = load(), {}, Figures(restarts=1)
    flows_env = {"FAULTS_FLOWS": "tests.integration.scaling.flows"}
    listening = Fleet(pooled_url, tmp_path / "l", concurrency=4, env={
        **flows_env, "PGFLOW_LISTEN_URL": db_url})  # fmt: skip
    polling = Fleet(pooled_url, tmp_path / "p", concurrency=4, env=flows_env)
    for fleet in (listening, polling):
        fleet.logs.mkdir()
    backends = Backends(db_url)
    with listening, polling, Client(pooled_url) as client:
        listening.spawn(LISTENERS)
        polling.spawn(8 - LISTENERS)
        for fleet in (listening, polling):
            fleet.wait_ready(db_url)
        backends.start()
        for slug, payload in runs:
            run = client.start(slug, payload)
            if slug != doomed.slug:
                want[run.run_id] = expected(slug, payload)
        wait_for_progress(db_url, 120, listening)
        backends.stop()
        outage(bouncer)
        wait_until_finished(db_url, len(runs), listening, time.monotonic() + DEADLINE)
        waited = client.wait(next(iter(want)), timeout=30)  # through PgBouncer, polled
        # the runs may all have finished before the outage: a worker that saw it failing
        # logs its end at its next successful call, after its backoff
        wait_recovered(time.monotonic() + 60, listening, polling)
        logs = listening.log_tail(100_000) + polling.log_tail(100_000)
        died = listening.died_while_serving() + polling.died_while_serving()
    assert waited.status == "completed"
    check_doomed(db_url, 6)
    check_invariants(db_url, want, figures)
    assert figures.executions >= figures.tasks + 20  # each flaky run's failed first attempt
    assert not died, logs
    # The outage was seen: a worker call failed ("database unavailable"), or a worker was
    # waiting on its pool while the pool could not reconnect ("error connecting"; the call
    # then went through once PgBouncer was back, so nothing failed). An outage a worker
    # logged has its end logged too (wait_recovered waited for it).
    assert "database unavailable" in logs or "error connecting in 'pgflow'" in logs, logs
    assert "database unavailable" not in logs or "database available again" in logs, logs
    assert logs.count("wake-ups=LISTEN on postgresql://") == LISTENERS
    assert logs.count("cannot LISTEN: it polls for tasks every 0.2s") == 8 - LISTENERS
    # 8 workers' pools and handlers multiplexed onto PgBouncer's few server connections
    # (+ the direct LISTEN sessions, + the test's own progress check)
    assert backends.most <= POOL_SIZE + LISTENERS + 2, backends.most
