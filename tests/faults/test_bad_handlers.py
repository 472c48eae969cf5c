"""Handlers that hang, raise, return what JSON cannot hold, or ignore their timeout.

Real worker processes serve one flow per misbehaviour (:mod:`tests.faults.handler_flows`).
Each bad run must end ``failed`` with the error stored on its task (type and message),
after exactly ``max_attempts`` attempts; nothing may stay leased; and the workers must
keep serving: a well-behaved run started after all of them completes, and no worker
process exits.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from pgflow import Client
from pgflow.deploy import deploy_flows
from tests.faults.fleet import Fleet
from tests.faults.handler_flows import FLOWS

# flow -> (error_type, a fragment of the stored error message)
EXPECTED: dict[str, tuple[str, str]] = {
    "bad_hangs": ("TimeoutError", "did not finish within its timeout of 1 s"),
    "bad_hangs_sync": ("TimeoutError", "did not finish within its timeout of 1 s"),
    "bad_ignores_timeout": ("TimeoutError", "did not finish within its timeout of 1 s"),
    "bad_raises": ("ValueError", "boom from the handler"),
    "bad_exits": ("SystemExit", "3"),
    "bad_exits_sync": ("SystemExit", "4"),
    "bad_interrupts": ("KeyboardInterrupt", "KeyboardInterrupt()"),
    "bad_cancels": ("asyncio.exceptions.CancelledError", "CancelledError()"),
    "bad_not_json": ("pgflow.InvalidInputError", "return value"),
    "bad_huge": ("OutputTooLarge", "over the limit of 65536 bytes"),
}


@pytest.fixture
def served(db_url: str, logs: Path) -> Any:
    with psycopg.connect(db_url, autocommit=True) as conn:
        deploy_flows(conn, list(FLOWS), dev=True)
        conn.execute("select pgflow.set_setting('max_payload_bytes', 65536)")
    env = {"FAULTS_FLOWS": "tests.faults.handler_flows"}
    with Fleet(db_url, logs, concurrency=6, env=env) as fleet:
        fleet.spawn(2)
        fleet.wait_ready(db_url)
        yield fleet


def wait_all(client: Client, run_ids: dict[str, Any], fleet: Fleet) -> dict[str, Any]:
    deadline = time.monotonic() + 120  # generous: a readiness bound, not a speed check
    finished: dict[str, Any] = {}
    while len(finished) < len(run_ids) and time.monotonic() < deadline:
        for slug, run_id in run_ids.items():
            run = client.get_run(run_id)
            if run.is_finished:
                finished[slug] = run
        time.sleep(0.2)
    assert len(finished) == len(run_ids), f"{set(run_ids) - set(finished)}\n{fleet.log_tail()}"
    return finished


def test_misbehaving_handlers_fail_their_run_and_the_workers_keep_serving(
    db_url: str, served: Fleet
) -> None:
    with Client(db_url) as client:
        started = [*EXPECTED, "bad_nan"]
        run_ids = {slug: client.start(slug, {}).run_id for slug in started}
        runs = wait_all(client, run_ids, served)
        fine = client.wait(client.start("bad_fine", {}).run_id, timeout=60)
    assert fine.output == {"ok": "fine"}
    with psycopg.connect(db_url, row_factory=dict_row) as conn:
        rows = conn.execute(
            "select r.flow_slug, r.status as run_status, t.status, t.attempts_count, "
            "t.error_type, t.error_message, t.output, t.leased_until "
            "from pgflow.step_tasks t join pgflow.runs r using (run_id)"
        ).fetchall()
    tasks = {r["flow_slug"]: r for r in rows}
    for slug, (error_type, fragment) in EXPECTED.items():
        task = tasks[slug]
        assert runs[slug].status == "failed", (slug, task)
        assert (task["status"], task["attempts_count"]) == ("failed", 2), (slug, task)
        assert task["error_type"] == error_type, (slug, task)
        assert fragment in task["error_message"], (slug, task)
    # JSON has no NaN: like pydantic's JSON mode, pgflow stores it as null
    assert (runs["bad_nan"].status, tasks["bad_nan"]["output"]) == ("completed", None)
    assert all(r["leased_until"] is None for r in rows)
    alive = all(p.poll() is None for p in served.processes)
    assert served.exited == 0 and alive, served.log_tail()


def test_sigterm_stops_a_worker_whose_sync_handler_never_returns(
    db_url: str, served: Fleet
) -> None:
    with Client(db_url) as client:
        run = client.start("bad_never_returns", {})
        deadline = time.monotonic() + 60
        while client.get_run(run.run_id).steps[0].status != "started":
            assert time.monotonic() < deadline
            time.sleep(0.05)
    time.sleep(0.5)  # let a worker pick it up (ordering only; outcomes are asserted)
    for process in served.alive:
        process.send_signal(signal.SIGTERM)
    for process in served.processes:
        # the handler sleeps for 10 minutes; the worker must not wait for it to exit
        assert process.wait(60) == 0, served.log_tail()
