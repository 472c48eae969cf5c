"""pgflow events, stats and workers, and check's liveness warning, through the CLI."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from click.testing import CliRunner, Result

from pgflow.cli import main
from tests.integration.sql.helpers import claim, complete, define, q, start

ROOT = Path(__file__).resolve().parents[2]
FLOWS = """
from pgflow import Flow
flow = Flow("shop")
@flow.step()
def pay(input: dict) -> int:
    return 1
"""


def pgflow(db_url: str, *args: str) -> Result:
    return CliRunner().invoke(main, [*args, "--database-url", db_url])


def assert_user_error(result: Result, *fragments: str) -> None:
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    lines = result.stderr.splitlines()
    assert lines[0].startswith("Error: ") and lines[1].startswith("Hint: "), result.stderr
    for fragment in fragments:
        assert fragment in result.stderr


@pytest.fixture
def db(db_url: str) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(db_url, autocommit=True) as conn:
        define(conn, "shop", ("pay", []))
        yield conn


def one_run(db: psycopg.Connection[Any], worker: uuid.UUID | None = None) -> uuid.UUID:
    run_id: uuid.UUID = start(db, "shop")["run_id"]
    for task in claim(db, "shop", worker=worker):
        complete(db, task, 1)
    return run_id


def test_events_prints_one_json_object_a_line(db_url: str, db: psycopg.Connection[Any]) -> None:
    run_id = one_run(db)
    result = pgflow(db_url, "events", "--run", str(run_id))
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["event"] for line in lines] == [
        "run:started", "step:started", "task:started", "task:completed", "step:completed",
        "run:completed",
    ]  # fmt: skip
    assert all(line["v"] == 1 and line["run_id"] == str(run_id) for line in lines)
    limited = pgflow(db_url, "events", "--flow", "shop", "--limit", "2", "--since", "10m")
    assert [json.loads(x)["event"] for x in limited.stdout.splitlines()] == [
        "step:completed", "run:completed",
    ]  # fmt: skip


def test_stats_json_and_table(db_url: str, db: psycopg.Connection[Any]) -> None:
    for _ in range(3):
        one_run(db)
    result = pgflow(db_url, "stats", "--json", "--since", "1h")
    assert result.exit_code == 0, result.output
    (pay,) = json.loads(result.stdout)
    assert (pay["flow_slug"], pay["step_slug"], pay["runs"], pay["tasks"]) == ("shop", "pay", 3, 3)
    assert pay["success_rate"] == 1.0 and pay["duration_p50"] >= 0
    table = pgflow(db_url, "stats", "--flow", "shop")
    assert table.exit_code == 0 and "pay" in table.stdout and "100.0%" in table.stdout
    empty = pgflow(db_url, "stats", "--since", "2099-01-01")
    assert empty.exit_code == 0 and "No finished tasks" in empty.stderr


def test_workers_json_shows_live_and_gone(db_url: str, db: psycopg.Connection[Any]) -> None:
    live, gone = uuid.uuid4(), uuid.uuid4()
    for worker in (live, gone):
        q(db, "select pgflow.register_worker(%s, '{shop}', 'box', 7)", worker)
    q(db, "update pgflow.workers set last_heartbeat_at = now() - interval '5 minutes'"
          " where worker_id = %s", gone)  # fmt: skip
    start(db, "shop")
    claim(db, "shop", worker=live)
    result = pgflow(db_url, "workers", "--json")
    assert result.exit_code == 0, result.output
    found = {w["worker_id"]: w for w in json.loads(result.stdout)}
    assert (found[str(live)]["state"], found[str(live)]["in_flight"]) == ("live", 1)
    assert found[str(gone)]["state"] == "gone"
    table = pgflow(db_url, "workers")
    assert "live" in table.stdout and "gone" in table.stdout
    relaxed = json.loads(pgflow(db_url, "workers", "--json", "--gone-after", "10m").stdout)
    assert {w["state"] for w in relaxed} == {"live"}


def test_check_warns_when_no_live_worker_serves_a_deployed_flow(
    db_url: str, tmp_path: Path
) -> None:
    flows = tmp_path / "shop.py"
    flows.write_text(FLOWS)
    assert pgflow(db_url, "deploy", str(flows)).exit_code == 0
    result = pgflow(db_url, "check", str(flows))
    assert result.exit_code == 0, result.output  # a warning, not a failure
    assert "WARN flow 'shop': no live worker serves it" in result.stdout
    assert "pgflow worker" in result.stdout


def test_check_reports_history_partitions_and_warns_when_next_month_has_none(
    db_url: str, db: psycopg.Connection[Any], tmp_path: Path
) -> None:
    flows = tmp_path / "shop.py"
    flows.write_text(FLOWS)
    fine = pgflow(db_url, "check", str(flows))
    assert "ok   history partitions: up to " in fine.stdout, fine.stdout
    upcoming = q(db, "select month from pgflow.history_partitions() where month <> 'default'")
    nxt = upcoming[1]["month"]
    q(db, f"drop table pgflow.step_tasks_p{nxt.replace('-', '')}")
    q(db, f"drop table pgflow.step_states_p{nxt.replace('-', '')}")
    q(db, f"drop table pgflow.runs_p{nxt.replace('-', '')}")
    result = pgflow(db_url, "check", str(flows))
    assert result.exit_code == 0, result.output  # a warning, not a failure
    assert f"WARN history partitions: next month ({nxt}) has none yet" in result.stdout
    assert "create_history_partitions" in result.stdout


@pytest.mark.parametrize(
    "args",
    [
        ["stats", "--since", "yesterday"],
        ["events", "--since", "10 parsecs"],
        ["workers", "--gone-after", "soon"],
    ],
)
def test_nonsense_durations_are_one_line_errors(db_url: str, args: list[str]) -> None:
    assert_user_error(pgflow(db_url, *args), "is neither a duration nor a date", "e.g.")


@pytest.mark.parametrize("command", ["stats", "events"])
def test_unknown_flow_is_refused(db_url: str, command: str) -> None:
    assert_user_error(pgflow(db_url, command, "--flow", "nope"), "unknown flow 'nope'")


def test_unknown_run_is_refused(db_url: str) -> None:
    assert_user_error(pgflow(db_url, "events", "--run", str(uuid.uuid4())), "unknown run")


def test_follow_streams_until_ctrl_c(db_url: str, db: psycopg.Connection[Any]) -> None:
    process = subprocess.Popen(
        [sys.executable, "-c", "from pgflow.cli import main; main()", "events", "-f",
         "--flow", "shop", "--database-url", db_url],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        run_id = one_run(db)  # whether printed as replay or live, each event comes once
        seen = [json.loads(process.stdout.readline()) for _ in range(6)]
        assert [e["event"] for e in seen][-1] == "run:completed"
        assert {e["run_id"] for e in seen} == {str(run_id)}
    finally:
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=20)
    assert process.returncode == 130, err
    assert "Traceback" not in err
