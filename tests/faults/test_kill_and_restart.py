"""Several real workers under load while a supervisor SIGKILLs them and Postgres restarts.

Nothing is lost (docs/guarantees.md): a killed worker's tasks run again after their lease;
a Postgres restart under load ends with every run finished once. The load mixes chains,
diamonds and large maps. What is checked afterwards
(:func:`tests.faults.audit.check_invariants`): every run completed exactly once with the
right output; every task completed exactly once, by the attempt that held its lease; nothing
left leased or queued; no row left a terminal status.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any, Self

import psycopg

from pgflow import Client, Run
from pgflow.deploy import deploy_flows
from tests.faults.audit import Figures, check_invariants, install_audit
from tests.faults.fleet import Chaos, Fleet
from tests.faults.flows import FLOWS, chain, diamond, expected_output, fanout
from tests.private_postgres import PrivateServer

SCALE = float(os.environ.get("PGFLOW_FAULTS_SCALE", "1"))  # > 1: a longer soak, by hand
LOAD_DEADLINE = 240.0 * max(1.0, SCALE)  # seconds; generous on a loaded 2-core machine


def prepare(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        deploy_flows(conn, list(FLOWS), dev=True)
    install_audit(url)


def payloads(runs: int, map_size: int) -> list[tuple[str, Any]]:
    """``runs`` chains and diamonds, plus two maps of ``map_size`` elements."""
    load: list[tuple[str, Any]] = [(chain.slug, {"n": i}) for i in range(runs)]
    load += [(diamond.slug, {"n": i}) for i in range(runs)]
    load += [(fanout.slug, list(range(k, k + map_size))) for k in (0, 7)]
    return load


def task_count(runs: int, map_size: int) -> int:
    """How many tasks :func:`payloads` makes: 3 per chain, 4 per diamond, maps + totals."""
    return runs * 3 + runs * 4 + 2 * (map_size + 1)


def start_all(client: Client, load: list[tuple[str, Any]], expected: dict[Any, Any]) -> None:
    for slug, payload in load:
        run = client.start(slug, payload)
        expected[run.run_id] = expected_output(slug, payload)


def wait_until_finished(url: str, count: int, fleet: Fleet, deadline: float) -> None:
    """Poll until ``count`` runs are finished (a readiness wait, not a timing assertion)."""
    with psycopg.connect(url, autocommit=True) as conn:
        while time.monotonic() < deadline:
            row = conn.execute(
                "select count(*) filter (where status <> 'started'), count(*) from pgflow.runs"
            ).fetchone()
            assert row is not None
            if row[0] >= count and row[1] >= count:
                return
            time.sleep(0.25)
        stuck = conn.execute(
            "select step_slug, status, attempts_count, available_at > now() as delayed, "
            "leased_until, worker_id from pgflow.step_tasks where status <> 'completed' "
            "order by step_slug, task_index limit 20"
        ).fetchall()
    raise AssertionError(f"runs still live after the deadline: {stuck}\n{fleet.log_tail()}")


class Waiter(threading.Thread):
    """``Client.wait`` on one run in a thread of its own, across the server's restarts."""

    def __init__(self, url: str) -> None:
        super().__init__(name="waiter", daemon=True)
        self.url = url
        self.run_id: Any = None
        self.result: Run | None = None
        self.error: BaseException | None = None

    def follow(self, run_id: Any) -> None:
        self.run_id = run_id
        self.start()

    def run(self) -> None:
        try:
            with Client(self.url) as client:
                self.result = client.wait(self.run_id, timeout=LOAD_DEADLINE)
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            self.error = exc

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self.is_alive():
            self.join(LOAD_DEADLINE)


def test_killed_workers_lose_nothing_and_complete_each_task_once(
    private_pg: PrivateServer, fault_db: str, logs: Path, figures: Figures
) -> None:
    prepare(fault_db)
    expected: dict[Any, Any] = {}
    load, total_tasks = payloads(runs=60, map_size=1000), task_count(60, 1000)
    with Fleet(fault_db, logs, env={"FAULTS_JITTER": "0.01"}) as fleet, Client(fault_db) as client:
        fleet.spawn(4)
        fleet.wait_ready(fault_db)
        with Chaos(fleet, seed=7, kill_every=(0.3, 0.9)) as chaos:
            start_all(client, load, expected)
            for k in (1, 2, 3):  # on top of the random kills: three in the thick of the load
                wait_for_progress(fault_db, total_tasks * k // 4, fleet)
                fleet.kill_random(chaos.rng)
            wait_until_finished(fault_db, len(load), fleet, time.monotonic() + LOAD_DEADLINE)
        figures.workers_killed = fleet.killed
        figures.workers_started = len(fleet.processes)
    check_invariants(fault_db, expected, figures)
    assert figures.workers_killed >= 3
    assert not fleet.died_while_serving(), fleet.log_tail()


def test_postgres_restarts_under_load_and_every_run_still_finishes_once(
    private_pg: PrivateServer, fault_db: str, logs: Path, figures: Figures
) -> None:
    prepare(fault_db)
    expected: dict[Any, Any] = {}
    load = payloads(runs=40, map_size=600)
    parts = [load[i::4] for i in range(4)]
    before = private_pg.restarts
    with Fleet(fault_db, logs, env={"FAULTS_JITTER": "0.01"}) as fleet, Client(fault_db) as client:
        fleet.spawn(3)
        fleet.wait_ready(fault_db)
        with Chaos(fleet, seed=11), Waiter(fault_db) as waiter:
            start_all(client, parts[0], expected)
            waiter.follow(next(iter(expected)))  # a run live across every restart below
            private_pg.restart()
            start_all(client, parts[1], expected)  # the same client, no retry by the test
            private_pg.outage(2.0)
            start_all(client, parts[2], expected)
            private_pg.restart()
            start_all(client, parts[3], expected)
            wait_until_finished(fault_db, len(load), fleet, time.monotonic() + LOAD_DEADLINE)
        figures.workers_killed = fleet.killed
        figures.workers_started = len(fleet.processes)
    figures.restarts = private_pg.restarts - before
    assert waiter.result is not None and waiter.result.status == "completed", waiter.error
    check_invariants(fault_db, expected, figures)
    assert fleet.exited == 0, fleet.log_tail()  # every worker rode out every restart
    assert not fleet.tracebacks(), fleet.log_tail()


def wait_for_progress(url: str, completed_tasks: int, fleet: Fleet) -> None:
    """Poll until ``completed_tasks`` tasks are completed (readiness, bounded generously)."""
    deadline = time.monotonic() + LOAD_DEADLINE
    while time.monotonic() < deadline:
        try:
            with psycopg.connect(url, autocommit=True) as conn:
                row = conn.execute(
                    "select count(*) from pgflow.step_tasks where status = 'completed'"
                ).fetchone()
        except psycopg.OperationalError:
            row = None  # the server is restarting
        if row is not None and row[0] >= completed_tasks:
            return
        time.sleep(0.1)
    raise AssertionError(f"the load stalled before {completed_tasks} tasks\n{fleet.log_tail()}")


def test_everything_at_once_kills_terminations_and_restarts(
    private_pg: PrivateServer, fault_db: str, logs: Path, figures: Figures
) -> None:
    """The biggest run: every fault of this module together, on thousands of tasks."""
    prepare(fault_db)
    expected: dict[Any, Any] = {}
    runs, map_size = int(100 * SCALE), int(1500 * SCALE)
    load, total_tasks = payloads(runs=runs, map_size=map_size), task_count(runs, map_size)
    before = private_pg.restarts
    with Fleet(fault_db, logs, env={"FAULTS_JITTER": "0.01"}) as fleet, Client(fault_db) as client:
        fleet.spawn(4)
        fleet.wait_ready(fault_db)
        chaos = Chaos(fleet, seed=2026, kill_every=(0.4, 1.2), terminate_every=(1.0, 3.0))
        with chaos, Waiter(fault_db) as waiter:
            start_all(client, load, expected)
            waiter.follow(next(iter(expected)))
            faults = max(3, round(3 * SCALE))  # restarts and outages, spread over the load
            for k in range(1, faults + 1):
                wait_for_progress(fault_db, total_tasks * k // (faults + 1), fleet)
                fleet.kill_random(chaos.rng)  # on top of the random faults
                chaos.terminate_now()
                if k % 2 == 0:
                    private_pg.outage(1.5)
                else:
                    private_pg.restart()
            wait_until_finished(fault_db, len(load), fleet, time.monotonic() + LOAD_DEADLINE)
        figures.workers_killed = fleet.killed
        figures.workers_started = len(fleet.processes)
        figures.terminated = chaos.terminated
    figures.restarts = private_pg.restarts - before
    assert waiter.result is not None and waiter.result.status == "completed", waiter.error
    check_invariants(fault_db, expected, figures)
    assert figures.tasks == total_tasks
    assert figures.workers_killed >= 3 and figures.terminated >= 3
    assert not fleet.died_while_serving(), fleet.log_tail()
