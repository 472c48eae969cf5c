"""Tracing across processes: the caller and two workers, each its own process with its own
OpenTelemetry SDK, end up in one trace (the context travels with the run in Postgres)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import psycopg

from pgflow.deploy import deploy_flows
from tests.integration.telemetry.otel_process import flow

ROOT = Path(__file__).resolve().parents[3]


def run(role: str, db_url: str, out: Path) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "tests.integration.telemetry.otel_process", role, db_url,
         str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def spans(path: Path) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = json.loads(path.read_text(encoding="utf-8"))
    return found


def test_the_trace_continues_on_other_hosts(db_url: str, tmp_path: Path) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        deploy_flows(conn, [flow])
    run_id = run("caller", db_url, tmp_path / "caller.json")
    run("worker", db_url, tmp_path / "first.json")
    run("worker", db_url, tmp_path / "second.json")
    caller = {s["name"]: s for s in spans(tmp_path / "caller.json")}
    checkout, start = caller["checkout"], caller["start two_hosts"]
    assert start["parent_id"] == checkout["span_id"]
    assert start["attributes"]["pgflow.run_id"] == run_id
    (here,) = spans(tmp_path / "first.json")
    (there,) = spans(tmp_path / "second.json")
    assert (here["name"], there["name"]) == ("task two_hosts/here", "task two_hosts/there")
    for task in (here, there):
        assert task["trace_id"] == checkout["trace_id"]  # one trace, three processes
        assert task["parent_id"] == start["span_id"]
        assert task["attributes"]["pgflow.run_id"] == run_id
    assert here["attributes"]["pgflow.worker_id"] != there["attributes"]["pgflow.worker_id"]
    with psycopg.connect(db_url) as conn:
        row = conn.execute(
            "select status, trace_context ->> 'traceparent' from pgflow.runs where run_id = %s",
            [run_id],
        ).fetchone()
    assert row is not None and row[0] == "completed"
    assert row[1].startswith(f"00-{checkout['trace_id']:032x}-{start['span_id']:016x}-")
