"""`pgflow status` (stored tracebacks, --follow) and `pgflow runs --since` (real Postgres).

Runs are driven with the SQL API (claim, complete, fail), so each test decides exactly
what a worker reported and when.
"""

from __future__ import annotations

import asyncio
import io
import json
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from click.testing import CliRunner, Result
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from rich.console import Console

from pgflow import AsyncClient, Client, InvalidInputError
from pgflow.cli import main
from pgflow.cli._status import follow
from pgflow.worker.runner import task_error

USER_CODE = """\
def save(report):
    raise RuntimeError(f"the disk is full ({report})")


def handler(report):
    return save(report)
"""


@pytest.fixture
def conn(db_url: str) -> Iterator[psycopg.Connection[dict[str, Any]]]:
    with psycopg.connect(db_url, autocommit=True, row_factory=dict_row) as connection:
        yield connection


def pgflow(db_url: str, *args: str) -> Result:
    return CliRunner().invoke(main, [*args, "--database-url", db_url])


def define(conn: psycopg.Connection[Any], flow: str, *steps: str, **options: Any) -> None:
    """A flow whose steps each take `name[:dep]`; options apply to every step."""
    conn.execute("select pgflow.create_flow(%s)", [flow])
    extra = "".join(f", {name} => %({name})s" for name in options)
    for step in steps:
        slug, _, dep = step.partition(":")
        conn.execute(
            f"select pgflow.add_step(%(flow)s, %(slug)s, %(deps)s{extra})",
            {"flow": flow, "slug": slug, "deps": [dep] if dep else [], **options},
        )


def start(conn: psycopg.Connection[Any], flow: str, value: Any = None) -> uuid.UUID:
    row = conn.execute(
        "select run_id from pgflow.start_flow(%s, %s)", [flow, Jsonb(value or {})]
    ).fetchone()
    assert row is not None
    return row["run_id"]


def claim(conn: psycopg.Connection[Any], flow: str) -> list[dict[str, Any]]:
    sql = "select * from pgflow.claim_tasks(%s, %s, 50)"
    return conn.execute(sql, [[flow], uuid.uuid4()]).fetchall()


def complete(conn: psycopg.Connection[Any], task: dict[str, Any], output: Any) -> None:
    conn.execute(
        "select pgflow.complete_task(%s, %s, %s, %s, %s)",
        [task["run_id"], task["step_slug"], task["task_index"], Jsonb(output), task["attempt"]],
    )


def fail(conn: psycopg.Connection[Any], task: dict[str, Any], trace: str | None) -> None:
    conn.execute(
        "select pgflow.fail_task(%s, %s, %s, %s, %s, %s, %s)",
        [
            task["run_id"],
            task["step_slug"],
            task["task_index"],
            f"the disk is full ({task['step_slug']})",
            task["attempt"],
            "RuntimeError",
            trace,
        ],
    )


@pytest.fixture
def real_traceback(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[str, Path]:
    """A traceback as a worker stores it for a sync handler run in its thread pool."""
    path = tmp_path / "user_report.py"
    path.write_text(USER_CODE)
    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop("user_report", None)
    import user_report  # type: ignore[import-not-found]

    async def call() -> str:
        try:
            await asyncio.get_running_loop().run_in_executor(None, user_report.handler, "x")
        except RuntimeError as exc:
            trace = task_error(exc).traceback
            assert trace is not None
            return trace
        raise AssertionError("the handler did not fail")

    return asyncio.run(call()), path


def test_status_shows_the_trimmed_traceback_of_a_failed_task(
    db_url: str, conn: psycopg.Connection[Any], real_traceback: tuple[str, Path]
) -> None:
    trace, user_file = real_traceback
    define(conn, "reports", "explode", max_attempts=1)
    run_id = start(conn, "reports")
    (task,) = claim(conn, "reports")
    fail(conn, task, trace)

    shown = pgflow(db_url, "status", str(run_id))
    assert shown.exit_code == 0, shown.output
    out = shown.stdout
    assert "✗ explode  attempt 1" in out
    assert "  RuntimeError: the disk is full (explode)" in out
    assert f"  raised at {user_file}:2 in save" in out
    assert f'File "{user_file}", line 6, in handler' in out
    assert "[… 1 frame in concurrent]" in out and "thread.py" not in out
    assert out.index("step     status") < out.index("✗ explode")  # after the steps table

    full = pgflow(db_url, "status", str(run_id), "--full-traceback").stdout
    assert "concurrent/futures/thread.py" in full

    as_json = json.loads(pgflow(db_url, "status", str(run_id), "--json").stdout)
    assert as_json["status"] == "failed" and as_json["failed_task_count"] == 1
    assert as_json["failed_tasks"] == [
        {
            "step_slug": "explode",
            "task_index": 0,
            "attempt": 1,
            "error_type": "RuntimeError",
            "error_message": "the disk is full (explode)",
            "traceback": trace,
        }
    ]
    assert as_json["steps"][0]["error_traceback"] == trace  # the Run model is unchanged


def test_status_shows_five_failed_tasks_and_counts_the_rest(
    db_url: str, conn: psycopg.Connection[Any]
) -> None:
    steps = [f"s{n}" for n in range(6)]
    define(conn, "many", *steps, max_attempts=1, when_exhausted="skip")
    conn.execute(
        "select pgflow.add_step('many', 'each', step_type => 'map', max_attempts => 1, "
        "when_exhausted => 'skip')"
    )
    run_id = start(conn, "many", [1])
    for task in claim(conn, "many"):
        fail(conn, task, None if task["step_slug"] == "s0" else "Traceback (most recent ...")

    out = pgflow(db_url, "status", str(run_id)).stdout
    assert out.count("✗ ") == 5
    assert "… and 2 more failed tasks: " in out and "--json` lists up to 100" in out
    assert "✗ s0  attempt 1\n  RuntimeError: the disk is full (s0)\n" in out  # no traceback
    as_json = json.loads(pgflow(db_url, "status", str(run_id), "--json").stdout)
    assert as_json["failed_task_count"] == 7
    assert [(t["step_slug"], t["task_index"]) for t in as_json["failed_tasks"]] == [
        *((s, 0) for s in steps),
        ("each", 0),
    ]


def test_follow_without_a_terminal_appends_a_line_per_change(
    db_url: str, conn: psycopg.Connection[Any]
) -> None:
    define(conn, "chain", "a", "b:a", max_attempts=1)
    run_id = start(conn, "chain")
    command = "from pgflow.cli import main; main()"
    args = [sys.executable, "-c", command, "status", str(run_id), "--follow"]
    with subprocess.Popen(
        [*args, "--database-url", db_url],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        encoding="utf-8",
    ) as follower:
        assert follower.stdout is not None
        first = follower.stdout.readline()  # printed once it listens and has read the run
        assert first == f"Following run {run_id} of flow 'chain' (started)\n"
        (a,) = claim(conn, "chain")
        complete(conn, a, 1)
        (b,) = claim(conn, "chain")
        fail(conn, b, None)
        out, err = follower.communicate(timeout=30)
    assert follower.returncode == 1, err
    lines = out.splitlines()
    assert any(line.startswith("  ✓ a ") and "completed" in line for line in lines), out
    failed = next(line for line in lines if line.startswith("  ✗ b "))
    assert "failed" in failed and "the disk is full (b)" in failed
    assert "✗ b  attempt 1" in out  # the full view follows the appended lines
    assert f"Error: run {run_id} of flow 'chain' failed at step 'b'" in err


def test_follow_a_finished_run_prints_it_once(db_url: str, conn: psycopg.Connection[Any]) -> None:
    define(conn, "done", "a")
    run_id = start(conn, "done")
    (task,) = claim(conn, "done")
    complete(conn, task, 42)
    result = pgflow(db_url, "status", str(run_id), "--follow")
    assert result.exit_code == 0, result.output
    assert "Following" not in result.stdout and "completed" in result.stdout
    as_json = json.loads(pgflow(db_url, "status", str(run_id), "--follow", "--json").stdout)
    assert as_json["output"] == {"a": 42} and as_json["failed_tasks"] == []


class _Written(io.StringIO):
    """A console file that says when something was first written to it."""

    def __init__(self) -> None:
        super().__init__()
        self.first = threading.Event()

    def write(self, text: str) -> int:
        self.first.set()
        return super().write(text)


def test_follow_on_a_terminal_refreshes_a_live_table(
    db_url: str, conn: psycopg.Connection[Any]
) -> None:
    define(conn, "live", "a", "b:a")
    run_id = start(conn, "live")
    file = _Written()
    console = Console(file=file, force_terminal=True, width=120)
    outcome: list[Any] = []
    with Client(db_url) as client:
        follower = threading.Thread(target=lambda: outcome.append(follow(client, run_id, console)))
        follower.start()
        assert file.first.wait(30)  # the first table is drawn once it listens
        for _ in range(2):
            (task,) = claim(conn, "live")
            complete(conn, task, 1)
        follower.join(30)
    assert not follower.is_alive()
    assert outcome[0].status == "completed"
    drawn = file.getvalue()
    assert "\x1b[" in drawn and "completed" in drawn  # redrawn in place, with colours


def test_runs_since(db_url: str, conn: psycopg.Connection[Any]) -> None:
    define(conn, "timed", "a")
    old, new = start(conn, "timed"), start(conn, "timed")
    conn.execute(
        "update pgflow.runs set started_at = now() - interval '3 days' where run_id = %s", [old]
    )

    def listed(*args: str) -> list[str]:
        result = pgflow(db_url, "runs", "--json", *args)
        assert result.exit_code == 0, result.output
        return [r["run_id"] for r in json.loads(result.stdout)]

    assert listed("--since", "1d") == [str(new)]
    assert listed("--since", "4d") == [str(new), str(old)]
    assert listed("--since", "2000-01-01", "--flow", "timed", "--limit", "1") == [str(new)]
    assert listed("--since", (datetime.now(UTC) - timedelta(days=2)).isoformat()) == [str(new)]
    refused = pgflow(db_url, "runs", "--since", "yesterday")  # one line and a hint, exit 1
    assert refused.exit_code == 1 and "is neither a duration nor a date" in refused.stderr
    empty = pgflow(db_url, "runs", "--since", "1d", "--status", "failed")
    assert empty.exit_code == 0 and "No runs found with these filters" in empty.stderr

    with Client(db_url) as client:
        assert [r.run_id for r in client.runs(since=timedelta(hours=1))] == [new]
        with pytest.raises(InvalidInputError, match="timezone-aware"):
            client.runs(since=datetime(2026, 1, 1))  # naive: which zone?
        with pytest.raises(InvalidInputError):
            client.runs(since=timedelta(seconds=-1))

    async def async_listing() -> list[uuid.UUID]:
        async with AsyncClient(db_url) as client:
            return [r.run_id for r in await client.runs(since=datetime.now(UTC) - timedelta(1))]

    assert asyncio.run(async_listing()) == [new]


def test_status_after_a_real_worker_failed_a_handler(db_url: str, tmp_path: Path) -> None:
    flows = tmp_path / "failing_flow.py"
    flows.write_text(
        "from pgflow import Flow\n"
        "flow = Flow('failing_flow', max_attempts=1)\n"
        "def write(path):\n"
        "    raise PermissionError(f'cannot write {path}')\n"
        "@flow.step()\n"
        "def save(input: dict) -> int:\n"
        "    return write('/data/out.json')\n"
    )
    assert pgflow(db_url, "run", str(flows)).exit_code == 1
    (listed,) = json.loads(pgflow(db_url, "runs", "--json", "--flow", "failing_flow").stdout)
    out = pgflow(db_url, "status", listed["run_id"]).stdout
    assert "✗ save  attempt 1\n  PermissionError: cannot write /data/out.json\n" in out
    assert f"  raised at {flows}:4 in write\n" in out
    assert f'File "{flows}", line 7, in save' in out
    assert "frames in" in out and "pgflow/worker" not in out  # the worker's frames, counted
    assert "pgflow/worker" in pgflow(db_url, "status", listed["run_id"], "--full-traceback").stdout
