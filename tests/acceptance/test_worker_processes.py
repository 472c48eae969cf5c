"""Real `pgflow worker` processes: SIGTERM finishes the running task, kill -9 loses nothing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from pgflow import Client
from pgflow.deploy import deploy_flows
from tests.acceptance import worker_flows

FLOWS_FILE = Path(worker_flows.__file__)


@pytest.fixture
def deployed(db_url: str) -> str:
    with psycopg.connect(db_url, autocommit=True) as conn:
        deploy_flows(conn, [worker_flows.sleepy, worker_flows.stuck_first], dev=True)
    return db_url


@pytest.fixture
def spawn(deployed: str) -> Iterator[Any]:
    """Start `pgflow worker` processes; any still alive at teardown is killed."""
    processes: list[subprocess.Popen[str]] = []

    def start(flows_ref: str, *args: str) -> subprocess.Popen[str]:
        command = [sys.executable, "-c", "from pgflow.cli import main; main()", "worker"]
        env = {**os.environ, "PGFLOW_DATABASE_URL": deployed}
        process = subprocess.Popen(
            [*command, flows_ref, "--poll-interval", "0.1", *args],
            env=env,
            stderr=subprocess.PIPE,
            text=True,
        )
        processes.append(process)
        return process

    yield start
    for process in processes:
        if process.poll() is None:
            process.kill()
        process.wait(10)
        if process.stderr:
            process.stderr.close()


def wait_for_task_status(db_url: str, run_id: Any, status: str, timeout: float = 20) -> None:
    """Poll until the run's task has ``status`` (readiness only, never a speed check)."""
    deadline = time.monotonic() + timeout
    with psycopg.connect(db_url, autocommit=True) as conn:
        while time.monotonic() < deadline:
            row = conn.execute(
                "select status from pgflow.step_tasks where run_id = %s", [run_id]
            ).fetchone()
            if row and row[0] == status:
                return
            time.sleep(0.02)
    raise AssertionError(f"the task of run {run_id} never became {status!r}")


def test_sigterm_lets_the_running_task_finish_and_exits_0(deployed: str, spawn: Any) -> None:
    worker = spawn(f"{FLOWS_FILE}:sleepy")
    with Client(deployed) as client:
        run = client.start("sleepy", {"seconds": 1})
        wait_for_task_status(deployed, run.run_id, "started")
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(20) == 0
        assert client.get_run(run.run_id).output == {"nap": "slept on attempt 1"}
    stderr = worker.stderr.read()
    assert "received SIGTERM" in stderr and "pgflow worker stopped" in stderr
    assert "Traceback" not in stderr


def test_worker_start_up_lines_name_database_flows_and_concurrency(
    deployed: str, spawn: Any
) -> None:
    worker = spawn(str(FLOWS_FILE), "--concurrency", "3")
    with Client(deployed) as client:  # once a run completes, the start-up lines are out
        client.wait(client.start("sleepy", {"seconds": 0}).run_id, timeout=20)
    worker.send_signal(signal.SIGINT)
    assert worker.wait(20) == 0
    stderr = worker.stderr.read()
    assert "  database     postgresql://" in stderr and "password" not in stderr
    assert "  flows        sleepy (1 step), stuck_first (1 step)" in stderr
    assert "  concurrency  3 " in stderr


@pytest.mark.faults
def test_a_killed_workers_task_runs_again_once_on_another_worker(deployed: str, spawn: Any) -> None:
    doomed = spawn(f"{FLOWS_FILE}:stuck_first")
    with Client(deployed) as client:
        run = client.start("stuck_first", {})
        wait_for_task_status(deployed, run.run_id, "started")
        doomed.send_signal(signal.SIGKILL)  # mid-task: no report, no release
        assert doomed.wait(10) == -signal.SIGKILL
        rescuer = spawn(f"{FLOWS_FILE}:stuck_first")
        done = client.wait(run.run_id, timeout=20)  # after the 1 s lease expires
        rescuer.send_signal(signal.SIGTERM)
        assert rescuer.wait(20) == 0
    assert done.output == {"once": 2}  # attempt 1 died with its worker; attempt 2 finished
    with psycopg.connect(deployed) as conn:
        row = conn.execute(
            "select attempts_count, status, error_type from pgflow.step_tasks where run_id = %s",
            [run.run_id],
        ).fetchone()
    assert row == (2, "completed", "LeaseExpired")
