"""The I/O-free half of the clients, the Run model and the CLI's input parsing."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pydantic import BaseModel

from pgflow import Flow, InvalidInputError, Run, RunCancelledError, RunFailedError, UnknownRunError
from pgflow._client_base import list_params, run_uuid, start_params, timeout_error
from pgflow.cli.runs import parse_input


class Input(BaseModel):
    n: int


flow = Flow("typed", input=Input)
flow.step("s", lambda input: input.n)


def test_start_params_validate_against_the_input_model() -> None:
    params = start_params(flow, {"n": "3"}, None)
    assert params["flow_slug"] == "typed" and params["input"].obj == {"n": 3}
    with pytest.raises(InvalidInputError, match="invalid input for flow 'typed'"):
        start_params(flow, {"n": "three"}, None)


def test_start_params_by_slug_serialise_models_and_refuse_non_json() -> None:
    assert start_params("typed", Input(n=1), None)["input"].obj == {"n": 1}
    with pytest.raises(InvalidInputError, match="cannot be turned into JSON"):
        start_params("typed", {"x": object()}, None)
    run_id = uuid.uuid4()
    assert start_params("typed", {}, str(run_id))["run_id"] == run_id


def test_run_ids_must_be_uuids() -> None:
    with pytest.raises(UnknownRunError, match="'abc' is not a run id"):
        run_uuid("abc")


def test_list_params_check_status_and_limit() -> None:
    unfiltered = {"since_at": None, "since_ago": None}
    assert list_params("f", "failed", 5) == {
        "flow_slug": "f",
        "status": "failed",
        "limit": 5,
        **unfiltered,
    }
    assert list_params(None, None, 5, timedelta(hours=2))["since_ago"] == timedelta(hours=2)
    moment = datetime(2026, 1, 1, tzinfo=UTC)
    assert list_params(None, None, 5, moment)["since_at"] == moment
    for bad in (datetime(2026, 1, 1), timedelta(seconds=-1), "2h"):
        with pytest.raises(InvalidInputError, match="since must be"):
            list_params(None, None, 5, bad)  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="use one of: started, completed"):
        list_params(None, "done", 5)
    with pytest.raises(InvalidInputError):
        list_params(None, None, 0)


def _run(status: str, **extra: object) -> Run:
    now = datetime.now(UTC)
    steps = [
        {"step_slug": "a", "status": "completed", "started_at": now, "completed_at": now},
        {
            "step_slug": "b",
            "status": "failed" if status == "failed" else "cancelled",
            "error_message": "ValueError: nope (attempt 3 of 3)",
            "error_type": "ValueError",
            "attempts": 3,
        },
    ]
    run = {"run_id": uuid.uuid4(), "flow_slug": "f", "status": status, "input": {}, **extra}
    return Run.from_states({"run": {**run, "remaining_steps": 0}, "steps": steps})


def test_raise_for_status_names_the_failing_step() -> None:
    with pytest.raises(RunFailedError) as caught:
        _run("failed").raise_for_status()
    error = caught.value
    assert "failed at step 'b': ValueError: nope (attempt 3 of 3)" in str(error)
    assert (error.step_slug, error.error_type) == ("b", "ValueError")
    with pytest.raises(RunCancelledError):
        _run("cancelled").raise_for_status()
    done = _run("completed", output={"a": 1})
    assert done.raise_for_status() is done


def test_run_models_are_frozen_and_know_their_steps() -> None:
    start = datetime.now(UTC)
    run = _run("completed", started_at=start, finished_at=start + timedelta(seconds=2))
    assert run.duration == timedelta(seconds=2) and run.is_finished
    assert run.step("a").status == "completed"
    with pytest.raises(KeyError, match="no step 'zz'"):
        run.step("zz")
    with pytest.raises(ValueError):
        run.status = "failed"  # type: ignore[misc]


def test_timeout_error_lists_the_live_steps() -> None:
    run = _run("started")
    assert "did not finish within 0.5 s" in str(timeout_error(run, 0.5))


def test_parse_input_reads_json_files_and_explains_bad_json(tmp_path: Path) -> None:
    folder = tmp_path
    (folder / "in.json").write_text('{"n": 1}')
    assert parse_input(None) == {}
    assert parse_input('[1, "a"]') == [1, "a"]
    assert parse_input(f"@{folder / 'in.json'}") == {"n": 1}
    with pytest.raises(InvalidInputError, match=r"not valid JSON: .*line 1, column 2"):
        parse_input("{n: 1}")
    with pytest.raises(InvalidInputError, match="cannot read the input file"):
        parse_input(f"@{folder / 'missing.json'}")
