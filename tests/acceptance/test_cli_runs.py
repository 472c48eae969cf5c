"""The run-facing commands end to end through the CLI: run, start, status, runs, cancel."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from pgflow.cli import main

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    """The commands configure the 'pgflow' logger (a CLI's job); undo it after each test."""
    logger = logging.getLogger("pgflow")
    saved = (logger.handlers[:], logger.level, logger.propagate)
    yield
    logger.handlers[:], logger.level, logger.propagate = saved


def pgflow(db_url: str, *args: str, input: str | None = None) -> Result:
    return CliRunner().invoke(main, [*args, "--database-url", db_url], input=input)


def assert_user_error(result: Result, *fragments: str) -> None:
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    lines = result.stderr.splitlines()
    assert any(line.startswith("Error: ") for line in lines), result.stderr
    assert any(line.startswith("Hint: ") for line in lines), result.stderr
    for fragment in fragments:
        assert fragment in result.stderr


@pytest.mark.parametrize(
    ("example", "payload", "leaf"),
    [
        ("website_analysis.py", {"url": "https://example.com/pricing"}, "save"),
        ("batch_fanout.py", {"images": ["a.jpg", "b.png"], "width": 100}, "report"),
        ("conditional.py", {"ticket_id": 1, "text": "site down!", "customer": "x@y.z"}, "reply"),
    ],
)
def test_run_prints_the_output_of_each_example_as_json(
    db_url: str, example: str, payload: dict[str, object], leaf: str
) -> None:
    result = pgflow(db_url, "run", str(EXAMPLES / example), "--input", json.dumps(payload))
    assert result.exit_code == 0, result.output
    output = json.loads(result.stdout)  # stdout carries the JSON only
    assert list(output) == [leaf]
    assert "completed in" in result.stderr


def test_run_output_of_the_website_example(db_url: str) -> None:
    url = "https://example.com/pricing"
    result = pgflow(
        db_url, "run", str(EXAMPLES / "website_analysis.py"), "--input", f'{{"url": "{url}"}}'
    )
    report = json.loads(result.stdout)["save"]
    assert report["url"] == url and report["title"] == "Pricing" and report["sentiment"] == 1.0
    assert "Deployed flow 'website_analysis': created" in result.stderr
    assert "✓ sentiment" in result.stderr


def test_run_exits_1_with_the_step_error_when_the_run_fails(db_url: str, tmp_path: Path) -> None:
    flows = tmp_path / "failing.py"
    flows.write_text(
        "from pgflow import Flow\n"
        "flow = Flow('failing', max_attempts=2, base_delay=0)\n"
        "@flow.step()\n"
        "def explode(input: dict) -> int:\n"
        "    raise RuntimeError('the disk is full')\n"
    )
    result = pgflow(db_url, "run", str(flows))
    assert_user_error(result, "failed at step 'explode'", "RuntimeError: the disk is full")
    assert "attempt 2 of 2" in result.stderr
    assert result.stdout == ""


def test_bad_input_is_a_one_line_error_with_a_hint(db_url: str) -> None:
    website = str(EXAMPLES / "website_analysis.py")
    assert_user_error(pgflow(db_url, "run", website, "--input", "{url: x}"), "not valid JSON")
    assert_user_error(
        pgflow(db_url, "run", website, "--input", '{"url": "ftp://x"}'),
        "invalid input for flow 'website_analysis'",
    )
    assert_user_error(pgflow(db_url, "run", website, "--input", "@missing.json"), "missing.json")
    assert_user_error(pgflow(db_url, "start", "x", "--input", "[1,"), "not valid JSON")


def test_run_with_several_flows_asks_which_one(db_url: str, tmp_path: Path) -> None:
    flows = tmp_path / "two.py"
    flows.write_text(
        "from pgflow import Flow\n"
        "a = Flow('first').step('one', lambda input: 1)\n"
        "b = Flow('second').step('two', lambda input: 2)\n"
    )
    assert_user_error(pgflow(db_url, "run", str(flows)), "defines 2 flows (first, second)")
    result = pgflow(db_url, "run", str(flows), "--flow", "second")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"two": 2}


def test_start_status_runs_and_cancel(db_url: str) -> None:
    website = str(EXAMPLES / "website_analysis.py")
    assert pgflow(db_url, "deploy", website).exit_code == 0
    started = pgflow(db_url, "start", "website_analysis", "--input", '{"url": "https://a.b"}')
    assert started.exit_code == 0, started.output
    run_id = started.stdout.strip()
    uuid.UUID(run_id)  # stdout is the run id alone

    shown = pgflow(db_url, "status", run_id)
    assert shown.exit_code == 0, shown.output
    for fragment in (run_id, "website_analysis", "started", "website", "sentiment", "save"):
        assert fragment in shown.stdout
    as_json = json.loads(pgflow(db_url, "status", run_id, "--json").stdout)
    assert as_json["status"] == "started" and len(as_json["steps"]) == 4

    listed = pgflow(db_url, "runs", "--flow", "website_analysis")
    assert run_id in listed.stdout
    cancelled = pgflow(db_url, "cancel", run_id)
    assert cancelled.exit_code == 0 and f"Cancelled run {run_id}" in cancelled.stdout
    again = pgflow(db_url, "cancel", run_id)
    assert "already cancelled" in again.stdout
    assert run_id in pgflow(db_url, "runs", "--status", "cancelled").stdout
    assert pgflow(db_url, "runs", "--status", "completed").stdout == ""
    assert pgflow(db_url, "runs", "--status", "bogus").exit_code == 2  # a usage error


def test_start_wait_shows_steps_and_prints_the_output(db_url: str, tmp_path: Path) -> None:
    # A worker must run for --wait to finish: `pgflow run` deploys and works in-process;
    # here `start --wait` follows a run that a concurrent `run` of the same flow completes.
    flows = tmp_path / "quick.py"
    flows.write_text(
        "from pgflow import Flow\n"
        "flow = Flow('quick').step('double', lambda input: input['n'] * 2)\n"
    )
    assert pgflow(db_url, "deploy", str(flows)).exit_code == 0
    run_id = str(uuid.uuid4())
    first = pgflow(db_url, "start", "quick", "--input", '{"n": 21}', "--run-id", run_id)
    assert first.stdout.strip() == run_id
    assert pgflow(db_url, "run", str(flows), "--input", '{"n": 1}').exit_code == 0  # works both
    waited = pgflow(db_url, "start", "quick", "--run-id", run_id, "--wait", "--timeout", "10")
    assert waited.exit_code == 0, waited.output
    assert json.loads(waited.stdout) == {"double": 42}
    assert "✓ double" in waited.stderr


def test_start_wait_times_out_with_a_hint(db_url: str, tmp_path: Path) -> None:
    flows = tmp_path / "idle.py"
    flows.write_text("from pgflow import Flow\nflow = Flow('idle').step('s', lambda input: 1)\n")
    assert pgflow(db_url, "deploy", str(flows)).exit_code == 0
    result = pgflow(db_url, "start", "idle", "--wait", "--timeout", "0.2")
    assert_user_error(result, "did not finish within 0.2 s", "pgflow worker")


def test_unknown_flow_run_id_and_database_are_user_errors(db_url: str) -> None:
    assert_user_error(pgflow(db_url, "start", "nope", "--input", "{}"), "unknown flow 'nope'")
    assert_user_error(pgflow(db_url, "status", str(uuid.uuid4())), "unknown run")
    assert_user_error(pgflow(db_url, "status", "not-a-uuid"), "is not a run id")
    assert_user_error(pgflow(db_url, "cancel", str(uuid.uuid4())), "unknown run")
    unreachable = "postgresql://nobody@127.0.0.1:1/nowhere?connect_timeout=1"
    assert_user_error(pgflow(unreachable, "runs"), "127.0.0.1")


@pytest.mark.parametrize("since", ["yesterday", "10 parsecs", "2026-13-45"])
def test_a_nonsense_since_is_a_one_line_error_like_events_and_stats(
    db_url: str, since: str
) -> None:
    # the same exit code (1), message and hint as `pgflow events --since` and `stats --since`
    result = pgflow(db_url, "runs", "--since", since)
    assert_user_error(result, f"--since {since!r} is neither a duration nor a date", "e.g.")
