"""``reader_url``: read-only commands and client reads go to a streaming replica.

The test pauses the replica's replay, so the replica is a known moment behind the primary:
a run started after the pause is on the primary only. What the replica-backed reads show
(or do not show) proves where they went.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from click.testing import CliRunner, Result

from pgflow import AsyncClient, Client, Flow, UnknownRunError
from pgflow.cli import main
from pgflow.db.schema import install
from pgflow.deploy import deploy_flows
from tests.replication import Cluster, caught_up, replicated_pair

report = Flow("replica_report")


@report.step()
def build(input: Any) -> None:
    """Never run here: the runs stay started."""


@pytest.fixture(scope="module")
def pair() -> Iterator[tuple[Cluster, Cluster]]:
    """A primary with the pgflow schema and an asynchronous replica of it."""
    with replicated_pair(synchronous=False) as (primary, replica):
        primary.execute("create database pgflow")
        install(primary.url("pgflow"))
        with psycopg.connect(primary.url("pgflow"), autocommit=True) as conn:
            deploy_flows(conn, [report], dev=True)
        yield primary, replica


@pytest.fixture
def lagging(pair: tuple[Cluster, Cluster]) -> Iterator[dict[str, Any]]:
    """Run ``before`` is on both servers; run ``after`` (started once replay was paused)
    only on the primary. Replay resumes afterwards."""
    primary, replica = pair
    before = _start(primary)
    caught_up(primary, replica, "pgflow")
    replica.execute("select pg_wal_replay_pause()")
    replica.wait_for("select pg_get_wal_replay_pause_state() = 'paused'")
    after = _start(primary)
    yield {
        "before": before,
        "after": after,
        "primary": primary.url("pgflow"),
        "replica": replica.url("pgflow"),
    }
    replica.execute("select pg_wal_replay_resume()")


def _start(primary: Cluster) -> uuid.UUID:
    with Client(primary.url("pgflow")) as client:
        return client.start(report, {}).run_id


def pgflow(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(main, list(args), env=env)


def listed(result: Result) -> set[str]:
    assert result.exit_code == 0, result.output
    return {run["run_id"] for run in json.loads(result.stdout)}


def test_runs_and_status_read_from_the_reader_url(lagging: dict[str, Any]) -> None:
    before, after = str(lagging["before"]), str(lagging["after"])
    primary, replica = lagging["primary"], lagging["replica"]
    on_primary = listed(pgflow("runs", "--json", "--database-url", primary))
    on_replica = listed(
        pgflow("runs", "--json", "--reader-url", replica, "--database-url", primary)
    )
    assert {before, after} <= on_primary
    assert before in on_replica and after not in on_replica
    assert pgflow("status", after, "--database-url", primary).exit_code == 0
    lagged = pgflow("status", after, "--reader-url", replica, "--database-url", primary)
    assert lagged.exit_code == 1 and f"unknown run {after}" in lagged.stderr
    shown = pgflow("status", before, "--json", "--reader-url", replica)  # no primary needed
    assert shown.exit_code == 0 and json.loads(shown.stdout)["run_id"] == before


def test_the_environment_supplies_the_reader_url(lagging: dict[str, Any]) -> None:
    env = {"PGFLOW_READER_URL": lagging["replica"], "PGFLOW_DATABASE_URL": lagging["primary"]}
    on_replica = listed(pgflow("runs", "--json", env=env))
    assert str(lagging["before"]) in on_replica and str(lagging["after"]) not in on_replica


def test_client_reads_go_to_the_reader_and_everything_else_to_the_primary(
    lagging: dict[str, Any],
) -> None:
    with Client(lagging["primary"], reader_url=lagging["replica"]) as client:
        assert lagging["after"] not in {run.run_id for run in client.runs()}
        with pytest.raises(UnknownRunError):
            client.get_run(lagging["after"])
        assert client.get_run(lagging["before"]).status == "started"
        cancelled = client.cancel(lagging["after"])  # writes (and their reads) use the primary
        assert cancelled.status == "cancelled"


async def test_the_async_client_reads_from_the_reader_too(lagging: dict[str, Any]) -> None:
    async with AsyncClient(lagging["primary"], reader_url=lagging["replica"]) as client:
        assert lagging["after"] not in {run.run_id for run in await client.runs()}
        with pytest.raises(UnknownRunError):
            await client.get_run(lagging["after"])
    async with AsyncClient(lagging["primary"]) as client:
        assert (await client.get_run(lagging["after"])).run_id == lagging["after"]


def test_an_unreachable_reader_is_a_clear_error(lagging: dict[str, Any]) -> None:
    nowhere = "postgresql://u:secret@127.0.0.1:1,127.0.0.1:2/x?connect_timeout=2"
    result = pgflow("runs", "--reader-url", nowhere, "--database-url", lagging["primary"])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "could not connect to Postgres at postgresql://u@127.0.0.1:1,127.0.0.1:2/x" in (
        result.stderr
    )
    assert "every host failed: 127.0.0.1:1: Connection refused; 127.0.0.1:2:" in result.stderr
    assert "secret" not in result.output


def test_stats_read_from_the_reader_url(lagging: dict[str, Any]) -> None:
    primary, replica = lagging["primary"], lagging["replica"]
    with psycopg.connect(primary, autocommit=True) as conn:  # finished on the primary only
        claimed = conn.execute(
            "select run_id, step_slug, task_index, attempt from pgflow.claim_tasks("
            "array['replica_report'], gen_random_uuid(), 100)"
        ).fetchall()
        for run_id, step_slug, task_index, attempt in claimed:
            conn.execute(
                "select pgflow.complete_task(%s, %s, %s, 'null'::jsonb, %s)",
                [run_id, step_slug, task_index, attempt],
            )
    assert claimed
    on_primary = pgflow("stats", "--json", "--database-url", primary)
    assert on_primary.exit_code == 0, on_primary.output
    (build,) = json.loads(on_primary.stdout)
    assert build["step_slug"] == "build" and build["tasks"] >= len(claimed)
    on_replica = pgflow("stats", "--json", "--reader-url", replica, "--database-url", primary)
    assert on_replica.exit_code == 0, on_replica.output
    # replay is paused: the replica knows the tasks earlier tests finished, not these
    seen_there = sum(s["tasks"] for s in json.loads(on_replica.stdout))
    assert seen_there == build["tasks"] - len(claimed)


def test_the_viewer_reads_pages_from_the_reader_and_acts_on_the_primary(
    lagging: dict[str, Any],
) -> None:
    from starlette.testclient import TestClient

    from pgflow.ui.app import create_app
    from pgflow.ui.settings import UiSettings

    before, after = str(lagging["before"]), str(lagging["after"])
    app = create_app(UiSettings(), lagging["primary"], lagging["replica"])
    base = "http://127.0.0.1:8765"
    with TestClient(app, base_url=base) as viewer:
        runs = viewer.get("/runs")
        assert runs.status_code == 200
        assert before in runs.text and after not in runs.text  # the replica lags
        assert viewer.get(f"/runs/{after}").status_code == 404
        assert viewer.get(f"/runs/{before}").status_code == 200
    with TestClient(create_app(UiSettings(), lagging["primary"]), base_url=base) as direct:
        assert after in direct.get("/runs").text  # without a reader: the primary
