"""Worker pools: ``Worker(..., steps=[...])`` serves only the tasks of those steps."""

from __future__ import annotations

import asyncio
from typing import Any

import psycopg
import pytest
from click.testing import CliRunner

from pgflow import AsyncClient, ConfigurationError, Flow, Worker
from pgflow.cli import main
from tests.integration.runtime import WORKER_DEFAULTS, Deploy, WorkerPool, tasks_of

pooled = Flow("pooled")


@pooled.step()
def fetch(input: dict[str, Any]) -> int:
    return int(input["n"])


@pooled.step(depends_on=[fetch])
def render(fetch: int) -> str:
    return f"page {fetch}"


@pooled.step(depends_on=[render])
def publish(render: str) -> str:
    return render.upper()


def workers_by_step(db_url: str, run_ids: list[Any]) -> dict[str, set[Any]]:
    found: dict[str, set[Any]] = {}
    with psycopg.connect(db_url) as conn:
        for run_id in run_ids:
            for task in tasks_of(conn, run_id):
                found.setdefault(task["step_slug"], set()).add(task["worker_id"])
    return found


async def test_two_pools_on_one_flow_each_get_only_their_steps(
    deploy: Deploy, workers: WorkerPool, aclient: AsyncClient, db_url: str
) -> None:
    deploy(pooled)
    fetchers = workers.start(pooled, steps=["fetch"])
    renderers = workers.start(pooled, steps=["render", "publish"], concurrency=2)
    runs = [await aclient.start(pooled, {"n": n}) for n in range(6)]
    for n, run in enumerate(runs):
        done = await aclient.wait(run.run_id, timeout=15)
        assert done.output == {"publish": f"PAGE {n}"}
    found = workers_by_step(db_url, [r.run_id for r in runs])
    assert found == {
        "fetch": {fetchers.worker_id},
        "render": {renderers.worker_id},
        "publish": {renderers.worker_id},
    }


async def test_a_task_of_an_unserved_step_waits_for_a_worker_that_serves_it(
    deploy: Deploy, workers: WorkerPool, aclient: AsyncClient, db_url: str
) -> None:
    deploy(pooled)
    run = await aclient.start(pooled, {"n": 7})
    fetchers = Worker([pooled], db_url, steps=["fetch", "publish"], **WORKER_DEFAULTS)
    await asyncio.wait_for(fetchers.run_async(until_idle=True), 15)  # idle: render unserved
    with psycopg.connect(db_url) as conn:
        by_step = {t["step_slug"]: t for t in tasks_of(conn, run.run_id)}
    assert by_step["fetch"]["status"] == "completed"
    assert by_step["render"]["status"] == "queued"
    assert by_step["render"]["worker_id"] is None
    assert "publish" not in by_step
    assert (await aclient.get_run(run.run_id)).status == "started"
    everything = workers.start(pooled)
    done = await aclient.wait(run.run_id, timeout=15)
    assert done.output == {"publish": "PAGE 7"}
    found = workers_by_step(db_url, [run.run_id])
    assert found["render"] == {everything.worker_id}


def test_unknown_or_malformed_steps_are_refused_before_anything_runs() -> None:
    with pytest.raises(ConfigurationError) as raised:
        Worker([pooled], "postgresql://unused", steps=["fetch", "rendr"])
    assert "'rendr'" in str(raised.value) and "pooled" in str(raised.value)
    assert "fetch, publish, render" in (raised.value.hint or "")
    with pytest.raises(ConfigurationError, match="a list of step slugs"):
        Worker([pooled], "postgresql://unused", steps="fetch")
    with pytest.raises(ConfigurationError, match="non-empty"):
        Worker([pooled], "postgresql://unused", steps=[])
    worker = Worker([pooled], "postgresql://unused", steps=("render", "fetch", "render"))
    assert worker.steps == ("render", "fetch")
    assert Worker([pooled], "postgresql://unused").steps is None


def test_the_cli_refuses_an_unknown_step_with_a_hint(tmp_path: Any, db_url: str) -> None:
    flows = tmp_path / "flows.py"
    flows.write_text(
        "from pgflow import Flow\n"
        "f = Flow('cli_pool')\n"
        "@f.step()\n"
        "def fetch(input: dict) -> int:\n"
        "    return 1\n"
    )
    result = CliRunner().invoke(
        main, ["worker", str(flows), "--steps", "fetch,nope", "--database-url", db_url]
    )
    assert result.exit_code == 1, result.output
    assert "'nope'" in result.output and "cli_pool" in result.output
    assert "Traceback" not in result.output
