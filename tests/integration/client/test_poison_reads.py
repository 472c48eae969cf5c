"""Reading never fails because of a value (docs/guarantees.md): get_run, wait, runs and the CLI.

Values Python cannot decode (5,000 levels deep, a 5,001-digit integer, or more than the
200 levels a reader keeps) read as ``{"$undecodable": true, "reason": ..., "bytes": N}``;
the rest of the run reads as usual. ``{"$truncated": true, "bytes": N}`` (what
``get_run_with_states`` returns past its read budget) passes through and renders readably.
"""

from __future__ import annotations

import json
from typing import Any

import psycopg
import pytest
from click.testing import CliRunner, Result

from pgflow import AsyncClient, Client, Flow, Run
from pgflow.cli import main
from pgflow.cli._preview import format_size
from tests.integration.poison import DEEP, LONG_NUMBER, complete_root, start_run
from tests.integration.runtime import Deploy

single = Flow("single")


@single.step()
def only(input: Any) -> Any:
    return input


OVER_READ_DEPTH = "[" * 300 + "]" * 300  # Python decodes it; a Run could not serialise it
POISONS = pytest.mark.parametrize(
    ("value", "reason"),
    [
        (DEEP, "it is nested more than 200 levels deep"),
        (OVER_READ_DEPTH, "it is nested more than 200 levels deep"),
        (LONG_NUMBER, "a number in it has more than 4300 digits"),
    ],
    ids=["deep", "over-read-depth", "long-number"],
)


def marker(reason: str, text: str) -> dict[str, Any]:
    return {"$undecodable": True, "reason": reason, "bytes": len(text.encode())}


def pgflow(db_url: str, *args: str) -> Result:
    result = CliRunner().invoke(main, [*args, "--database-url", db_url])
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    return result


@POISONS
async def test_get_run_and_runs_mark_an_undecodable_input(
    deploy: Deploy, client: Client, aclient: AsyncClient, db_url: str, value: str, reason: str
) -> None:
    deploy(single)
    run_id = start_run(db_url, "single", value)
    run = client.get_run(run_id)
    assert run.input == marker(reason, value)
    assert run.flow_slug == "single" and run.status == "started"
    assert [(s.step_slug, s.status) for s in run.steps] == [("only", "started")]
    assert await aclient.get_run(run_id) == run
    (listed,) = client.runs(flow_slug="single")
    assert listed.input == run.input and (await aclient.runs())[0].input == run.input
    assert json.loads(run.model_dump_json())["input"] == run.input  # a Run always serialises


async def test_wait_returns_a_run_whose_output_cannot_be_decoded(
    deploy: Deploy, client: Client, aclient: AsyncClient, db_url: str
) -> None:
    deploy(single)
    start_run(db_url, "single", '{"fine": true}')
    run_id = complete_root(db_url, "single", "only", DEEP)
    done = client.wait(run_id, timeout=5)
    assert done.status == "completed" and done.input == {"fine": True}
    assert done.step("only").output == marker("it is nested more than 200 levels deep", DEEP)
    assert done.output == marker("it is nested more than 200 levels deep", f'{{"only": {DEEP}}}')
    assert await aclient.wait(run_id, timeout=5) == done


async def test_values_within_the_reading_limits_decode_exactly(
    deploy: Deploy, client: Client, db_url: str
) -> None:
    deploy(single)
    deep_enough = "[" * 150 + "]" * 150
    digits = "9" * 4300
    run_id = start_run(db_url, "single", f'{{"deep": {deep_enough}, "n": {digits}, "x": 0.1}}')
    assert client.get_run(run_id).input == {
        "deep": json.loads(deep_enough),
        "n": int(digits),
        "x": 0.1,
    }


async def test_truncation_markers_pass_through_to_the_run_and_the_cli(
    deploy: Deploy, client: Client, aclient: AsyncClient, db_url: str
) -> None:
    deploy(single)
    start_run(db_url, "single", '{"small": true}')
    run_id = complete_root(db_url, "single", "only", json.dumps({"big": "x" * 8000}))
    with psycopg.connect(db_url, autocommit=True) as conn:  # the owner lowers the read cap
        conn.execute("select pgflow.set_setting('read_budget_bytes', 1000)")
    run = client.get_run(run_id)
    assert run.input == {"small": True} and run.status == "completed"
    step_output, run_output = run.step("only").output, run.output
    for value in (step_output, run_output):
        assert value == {"$truncated": True, "bytes": value["bytes"]} and value["bytes"] > 8000
    assert await aclient.get_run(run_id) == run
    shown = pgflow(db_url, "status", str(run_id)).stdout
    assert f"<truncated: {format_size(run_output['bytes'])}>" in shown  # the run's output
    assert f"<truncated: {format_size(step_output['bytes'])}>" in shown  # the step's output
    assert json.loads(pgflow(db_url, "status", str(run_id), "--json").stdout)["output"] == (
        run_output
    )


@POISONS
def test_status_and_runs_show_an_undecodable_input(
    deploy: Deploy, db_url: str, value: str, reason: str
) -> None:
    deploy(single)
    run_id = str(start_run(db_url, "single", value))
    size = format_size(len(value))
    shown = pgflow(db_url, "status", run_id).stdout
    assert run_id in shown and f"<undecodable: {reason}, {size}>" in shown
    as_json = json.loads(pgflow(db_url, "status", run_id, "--json").stdout)
    assert as_json["input"] == marker(reason, value)
    extra = ("failed_tasks", "failed_task_count")  # status --json: a Run and its failed tasks
    run = Run.model_validate({k: v for k, v in as_json.items() if k not in extra})
    assert run.steps[0].step_slug == "only" and as_json["failed_task_count"] == 0
    assert run_id in pgflow(db_url, "runs").stdout
    (listed,) = json.loads(pgflow(db_url, "runs", "--json").stdout)
    assert listed["input"] == marker(reason, value)


def test_status_shows_an_undecodable_output(deploy: Deploy, db_url: str) -> None:
    deploy(single)
    start_run(db_url, "single", "{}")
    run_id = str(complete_root(db_url, "single", "only", LONG_NUMBER))
    shown = pgflow(db_url, "status", run_id).stdout
    assert "completed" in shown and "<undecodable: a number in it has more than 4300" in shown
    as_json = json.loads(pgflow(db_url, "status", run_id, "--json").stdout)
    assert as_json["steps"][0]["output"]["$undecodable"] is True
