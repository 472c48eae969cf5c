"""Ctrl+C with real signals: `pgflow run` cancels its run, `pgflow start --wait` leaves it.

Each command runs as a subprocess; the test waits until the run is under way (its task
started, or the command said it is waiting), sends SIGINT and checks the exit code (130),
the run id printed and the run's status in the database.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from pgflow.deploy import deploy_flows
from tests.acceptance import interrupt_flows

FLOWS_FILE = Path(interrupt_flows.__file__)


class Command:
    """A `pgflow` subprocess whose stderr is collected line by line as it arrives."""

    def __init__(self, db_url: str, *args: str) -> None:
        command = [sys.executable, "-c", "from pgflow.cli import main; main()", *args]
        self.process = subprocess.Popen(
            [*command, "--database-url", db_url],
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: list[str] = []
        self._arrived = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            with self._arrived:
                self.lines.append(line)
                self._arrived.notify_all()

    def wait_for_line(self, fragment: str, timeout: float = 30) -> str:
        with self._arrived:
            found = self._arrived.wait_for(
                lambda: any(fragment in line for line in self.lines), timeout
            )
        assert found, f"no line with {fragment!r} within {timeout} s: {self.stderr}"
        return next(line for line in self.lines if fragment in line)

    def interrupt(self) -> None:
        self.process.send_signal(signal.SIGINT)

    def exit_code(self, timeout: float = 20) -> int:
        code = self.process.wait(timeout)
        self._reader.join(5)
        return code

    @property
    def stderr(self) -> str:
        return "".join(self.lines)


@pytest.fixture
def commands(db_url: str) -> Iterator[Any]:
    started: list[Command] = []

    def spawn(*args: str) -> Command:
        started.append(Command(db_url, *args))
        return started[-1]

    yield spawn
    for command in started:
        if command.process.poll() is None:
            command.process.kill()
        command.process.wait(10)
        for stream in (command.process.stdout, command.process.stderr):
            if stream:
                stream.close()


def started_task(db_url: str, flow_slug: str, timeout: float = 30) -> Any:
    """Poll until a task of the flow runs; return its run id (readiness, not speed)."""
    deadline = time.monotonic() + timeout
    with psycopg.connect(db_url, autocommit=True) as conn:
        while time.monotonic() < deadline:
            row = conn.execute(
                "select run_id from pgflow.step_tasks where flow_slug = %s and status = 'started'",
                [flow_slug],
            ).fetchone()
            if row:
                return row[0]
            time.sleep(0.02)
    raise AssertionError(f"no task of {flow_slug!r} started within {timeout} s")


def run_status(db_url: str, run_id: Any) -> str:
    with psycopg.connect(db_url) as conn:
        row = conn.execute("select status from pgflow.runs where run_id = %s", [run_id])
        return str(row.fetchone()[0])


def wait_for_status(db_url: str, run_id: Any, status: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while run_status(db_url, run_id) != status:
        assert time.monotonic() < deadline, f"run {run_id} never became {status!r}"
        time.sleep(0.02)


def test_ctrl_c_in_run_cancels_the_run_prints_its_id_and_exits_130(
    db_url: str, commands: Any
) -> None:
    command = commands("run", f"{FLOWS_FILE}:patient")
    run_id = started_task(db_url, "interrupt_patient")
    command.interrupt()
    assert command.exit_code() == 130, command.stderr
    assert f"Cancelled run {run_id}" in command.stderr
    assert "Aborted!" not in command.stderr and "Traceback" not in command.stderr
    assert command.process.stdout is not None and command.process.stdout.read() == ""
    assert run_status(db_url, run_id) == "cancelled"


def test_a_second_ctrl_c_in_run_exits_at_once_while_a_handler_will_not_stop(
    db_url: str, commands: Any
) -> None:
    command = commands("run", f"{FLOWS_FILE}:stubborn")
    run_id = started_task(db_url, "interrupt_stubborn")
    command.interrupt()
    wait_for_status(db_url, run_id, "cancelled")  # the first Ctrl+C cancelled the run
    command.wait_for_line(f"cancelling run {run_id}")
    command.interrupt()  # the clean-up waits for a task that never ends: force the exit
    assert command.exit_code() == 130, command.stderr
    assert "Exiting at once" in command.wait_for_line("Exiting at once")
    assert "Traceback" not in command.stderr


def test_ctrl_c_in_start_wait_leaves_the_run_running_and_says_how_to_follow_it(
    db_url: str, commands: Any
) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        deploy_flows(conn, [interrupt_flows.patient], dev=True)
    command = commands("start", "interrupt_patient", "--wait")
    line = command.wait_for_line("waiting for it to finish")  # no worker: it waits forever
    run_id = line.split("Started run ", 1)[1].split()[0]
    command.interrupt()
    assert command.exit_code() == 130, command.stderr
    assert f"run {run_id} is still running" in command.stderr
    assert f"pgflow status {run_id}" in command.stderr
    assert "Aborted!" not in command.stderr and "Traceback" not in command.stderr
    said = [line.split(" ", 1)[0] for line in command.lines]
    assert said == ["Started", "Interrupted:"], command.stderr  # no pool or reconnect noise
    assert run_status(db_url, run_id) == "started"
