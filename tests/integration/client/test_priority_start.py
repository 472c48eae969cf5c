"""Priorities through the public API: Flow(priority=), start(priority=), --priority, compile."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg
import pytest
from click.testing import CliRunner

from pgflow import AsyncClient, Client, Flow, InvalidInputError, Worker
from pgflow.cli import main
from pgflow.compiler import compile_flow
from pgflow.manifest.build import from_migrations
from tests.integration.runtime import WORKER_DEFAULTS, Deploy

ranked = Flow("ranked", priority=4)


@ranked.step()
def only(input: dict[str, Any]) -> int:
    return 1


def priorities(db_url: str) -> dict[str, int]:
    with psycopg.connect(db_url) as conn:
        rows = conn.execute("select run_id::text, priority from pgflow.runs").fetchall()
    return {run_id: priority for run_id, priority in rows}


async def test_starts_take_the_flow_priority_unless_given_one(
    deploy: Deploy, client: Client, aclient: AsyncClient, db_url: str
) -> None:
    deploy(ranked)
    default = client.start(ranked, {})
    urgent = client.start("ranked", {}, priority=50)
    deferred = await aclient.start(ranked, {}, priority=-10)
    assert priorities(db_url) == {
        str(default.run_id): 4,
        str(urgent.run_id): 50,
        str(deferred.run_id): -10,
    }
    order: list[Any] = []
    worker = Worker([ranked], db_url, concurrency=1, **WORKER_DEFAULTS)
    await worker.run_async(until_idle=True)
    with psycopg.connect(db_url) as conn:
        order = [
            r[0]
            for r in conn.execute(
                "select run_id from pgflow.step_tasks order by started_at, run_id"
            ).fetchall()
        ]
    assert order == [urgent.run_id, default.run_id, deferred.run_id]


@pytest.mark.parametrize("value", [101, -101, True, 2.5])
async def test_a_priority_out_of_range_is_refused_before_anything_is_written(
    deploy: Deploy, client: Client, aclient: AsyncClient, db_url: str, value: Any
) -> None:
    deploy(ranked)
    with pytest.raises(InvalidInputError) as caught:
        client.start(ranked, {}, priority=value)
    assert "-100 to 100" in str(caught.value) and "ranked" in str(caught.value)
    with pytest.raises(InvalidInputError):
        await aclient.start("ranked", {}, priority=value)
    assert priorities(db_url) == {}


def test_the_cli_starts_with_a_priority(deploy: Deploy, db_url: str) -> None:
    deploy(ranked)
    runner = CliRunner()
    result = runner.invoke(
        main, ["start", "ranked", "--input", "{}", "--priority", "9", "--database-url", db_url]
    )
    assert result.exit_code == 0, result.output
    assert list(priorities(db_url).values()) == [9]
    refused = runner.invoke(
        main, ["start", "ranked", "--input", "{}", "--priority", "500", "--database-url", db_url]
    )
    assert refused.exit_code == 2 and "500" in refused.output
    assert len(priorities(db_url)) == 1


def test_compiled_sql_carries_the_priority_and_is_read_back(tmp_path: Path) -> None:
    sql = compile_flow(Flow("ranked", priority=-5).step("a", lambda input: 1)).sql
    assert "priority => -5" in sql
    assert "priority =>" not in compile_flow(Flow("plain").step("a", lambda input: 1)).sql
    (tmp_path / "0001_ranked.sql").write_text(sql)
    assert from_migrations(tmp_path)["ranked"].priority == -5
