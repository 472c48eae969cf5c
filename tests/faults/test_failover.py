"""Failover to a streaming replica: what synchronous replication keeps, what async loses.

Every test builds its own primary and replica (:mod:`tests.replication`); workers and
clients use one multi-host URL (``host=primary,replica``, ``target_session_attrs=
read-write``), so after the primary dies they find the promoted replica by themselves.

* Synchronous replica, under load: real workers serve chains and maps while an
  acknowledgement ledger (a SQL-core client in a thread) records every completion whose
  commit returned. The primary is SIGKILLed mid-load, the replica promoted. Every run
  finishes exactly once (:func:`tests.faults.audit.check_invariants`) and every
  acknowledged completion is on the new primary.
* Synchronous replica, step by step: with the replica disconnected, a completion's commit
  waits (``SyncRep``) instead of returning; the primary dies before acknowledging it; on
  the promoted replica the task is still leased to the same attempt, so the report that
  is sent again (as the worker's reporter does) is accepted.
* Asynchronous replica, step by step: the same completion is acknowledged at once, the
  primary dies, and on the promoted replica the completion is gone: the task is handed out
  again after its lease, so its handler runs a second time (docs/scaling.md says so).
"""

from __future__ import annotations

import threading
import time
import uuid
from pathlib import Path
from typing import Any, Self

import psycopg
from psycopg.types.json import Jsonb

from pgflow import Client, Flow
from pgflow.db.schema import install
from pgflow.deploy import deploy_flows
from tests.faults.audit import Figures, check_invariants
from tests.faults.fleet import Fleet
from tests.faults.test_kill_and_restart import (
    payloads,
    prepare,
    start_all,
    task_count,
    wait_for_progress,
    wait_until_finished,
)
from tests.replication import Cluster, caught_up, multi_host_url, replicated_pair

DEADLINE = 90.0  # seconds for the load to finish after the failover
ledger_flow = Flow("ledger", timeout=2, max_attempts=50, base_delay=0)


@ledger_flow.step()
def entry(input: Any) -> None:
    """Never run by a worker: the ledger completes these tasks through the SQL core."""


solo = Flow("solo", timeout=1, max_attempts=5, base_delay=0)


@solo.step()
def only(input: Any) -> None:
    """Claimed and completed by hand in the step-by-step tests."""


CLAIM = "select run_id, step_slug, task_index, attempt from pgflow.claim_tasks(%s, %s, 1)"
COMPLETE = "select status, attempts_count from pgflow.complete_task(%s, %s, %s, %s, attempt => %s)"
TASK = "select status, attempts_count from pgflow.step_tasks where run_id = %s"


class Ledger(threading.Thread):
    """Completes ledger tasks one at a time; records those whose commit returned.

    A connection error in the middle of a call leaves that call's outcome unknown: it is
    not recorded (nothing was acknowledged) and the task runs again after its lease.
    """

    def __init__(self, url: str) -> None:
        super().__init__(name="ledger", daemon=True)
        self.url = url
        self.acked: list[tuple[uuid.UUID, int]] = []
        self.interrupted = 0
        self._done = threading.Event()

    def run(self) -> None:
        worker = uuid.uuid4()
        while not self._done.is_set():
            try:
                with psycopg.connect(self.url, autocommit=True) as conn:
                    while not self._done.is_set():
                        self._one(conn, worker)
            except psycopg.OperationalError:
                self.interrupted += 1
                self._done.wait(0.05)

    def _one(self, conn: psycopg.Connection[Any], worker: uuid.UUID) -> None:
        claimed = conn.execute(CLAIM, [[ledger_flow.slug], worker]).fetchone()
        if claimed is None:
            self._done.wait(0.01)
            return
        run_id, step, index, attempt = claimed
        row = conn.execute(COMPLETE, [run_id, step, index, Jsonb(attempt), attempt]).fetchone()
        if row == ("completed", attempt):
            self.acked.append((run_id, attempt))

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self.join(30)


def install_databases(primary: Cluster, *names: str) -> None:
    for name in names:
        primary.execute(f"create database {name}")
        install(primary.url(name))


def deploy(url: str, *flows: Flow) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        deploy_flows(conn, list(flows), dev=True)


def wait_for_log(fleet: Fleet, text: str, timeout: float = 60.0) -> None:
    """Poll the workers' logs until one has ``text`` (a readiness wait, bounded)."""
    deadline = time.monotonic() + timeout
    while text not in fleet.log_tail(100_000):
        if time.monotonic() > deadline:
            raise AssertionError(f"no worker logged {text!r}\n{fleet.log_tail()}")
        time.sleep(0.05)


def missing_acks(url: str, acked: list[tuple[uuid.UUID, int]]) -> list[Any]:
    """Acknowledged completions that are not on the database of ``url``."""
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            "select run_id, attempts_count from pgflow.step_tasks where status = 'completed'"
        ).fetchall()
    have = {(run_id, attempts) for run_id, attempts in rows}
    return [ack for ack in acked if ack not in have]


def test_failover_to_a_synchronous_replica_under_load_loses_nothing(
    logs: Path, figures: Figures
) -> None:
    with replicated_pair(synchronous=True) as (primary, replica):
        install_databases(primary, "pgflow", "ledger")
        url = multi_host_url(primary, replica, "pgflow")
        ledger_url = multi_host_url(primary, replica, "ledger")
        prepare(url)
        deploy(ledger_url, ledger_flow)
        primary.execute(
            "select count(pgflow.start_flow('ledger', '{}')) from generate_series(1, 3000)",
            "ledger",
        )
        load, expected = payloads(runs=30, map_size=300), {}
        with Fleet(url, logs, env={"FAULTS_JITTER": "0.005"}) as fleet, Client(url) as client:
            fleet.spawn(4)
            fleet.wait_ready(url)
            with Ledger(ledger_url) as ledger:
                start_all(client, load, expected)
                wait_for_progress(url, task_count(30, 300) // 3, fleet)
                acked_before = len(ledger.acked)
                primary.kill()
                wait_for_log(fleet, "database unavailable")  # while the replica refuses writes
                replica.promote()
                wait_until_finished(url, len(load), fleet, time.monotonic() + DEADLINE)
            figures.restarts, figures.workers_started = 1, len(fleet.processes)
        check_invariants(url, expected, figures)
        assert missing_acks(ledger_url, ledger.acked) == []
        assert acked_before > 0 and len(ledger.acked) > acked_before and ledger.interrupted > 0
        assert not fleet.died_while_serving(), fleet.log_tail()
        assert "database available again" in fleet.log_tail(100_000)


def test_a_synchronous_commit_is_acknowledged_only_once_the_replica_has_it() -> None:
    with replicated_pair(synchronous=True) as (primary, replica):
        install_databases(primary, "pgflow")
        url = multi_host_url(primary, replica, "pgflow")
        deploy(url, solo)
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("select pgflow.start_flow('solo', '{}')")
            task = conn.execute(CLAIM, [[solo.slug], uuid.uuid4()]).fetchone()
        assert task is not None
        replica.pause_receiver()
        outcome: list[Any] = []
        reporter = threading.Thread(target=_report, args=(primary.url("pgflow"), task, outcome))
        reporter.start()
        primary.wait_for(  # the commit is written on the primary and waits for the replica
            "select exists (select 1 from pg_stat_activity where wait_event = 'SyncRep')"
        )
        assert outcome == []  # not acknowledged
        primary.kill()
        reporter.join(30)
        assert len(outcome) == 1 and isinstance(outcome[0], psycopg.OperationalError)
        replica.promote()
        with psycopg.connect(url, autocommit=True) as conn:
            assert conn.execute(TASK, [task[0]]).fetchone() == ("started", 1)  # still leased
            again = conn.execute(COMPLETE, [*task[:3], Jsonb(1), task[3]]).fetchone()
            run = conn.execute("select status from pgflow.runs").fetchone()
        assert again == ("completed", 1) and run == ("completed",)  # the resent report wins


def test_an_asynchronous_replica_can_lose_an_acknowledged_completion() -> None:
    with replicated_pair(synchronous=False) as (primary, replica):
        install_databases(primary, "pgflow")
        url = multi_host_url(primary, replica, "pgflow")
        deploy(url, solo)
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("select pgflow.start_flow('solo', '{}')")
            task = conn.execute(CLAIM, [[solo.slug], uuid.uuid4()]).fetchone()
        assert task is not None
        caught_up(primary, replica, "pgflow")
        replica.pause_receiver()  # the replica falls behind, as a lagging one does
        outcome: list[Any] = []
        _report(primary.url("pgflow"), task, outcome)
        assert outcome == [("completed", 1)]  # acknowledged at once, replica or not
        primary.kill()
        replica.promote()
        with psycopg.connect(url, autocommit=True) as conn:
            assert conn.execute(TASK, [task[0]]).fetchone() == ("started", 1)  # lost
            assert conn.execute("select status from pgflow.runs").fetchone() == ("started",)
            again = _claim_after_lease(conn)
        assert again is not None and again[3] == 2  # the handler runs a second time


def _report(url: str, task: Any, outcome: list[Any]) -> None:
    """Report a completion of ``task`` on ``url``; append the row, or the error."""
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            outcome.append(conn.execute(COMPLETE, [*task[:3], Jsonb(1), task[3]]).fetchone())
    except psycopg.OperationalError as exc:
        outcome.append(exc)


def _claim_after_lease(conn: psycopg.Connection[Any], timeout: float = 30.0) -> Any:
    """Claim until the lost task's lease (1 s) has expired and it is handed out again."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        claimed = conn.execute(CLAIM, [[solo.slug], uuid.uuid4()]).fetchone()
        if claimed is not None:
            return claimed
        time.sleep(0.1)
    return None
