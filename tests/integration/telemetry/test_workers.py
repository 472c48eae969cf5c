"""pgflow.telemetry.workers and the liveness check of pgflow check."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import psycopg
import pytest

from pgflow import Flow
from pgflow.deploy import deploy_flows
from pgflow.doctor import liveness_findings
from pgflow.telemetry.workers import LIVE_WITHIN, flow_liveness, list_workers
from pgflow.worker.settings import DEFAULTS
from tests.integration.sql.helpers import claim, q, start

served = Flow("served").step("work", lambda input: 1)
idle = Flow("idle").step("work", lambda input: 1)


@pytest.fixture
def db(db_url: str) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(db_url, autocommit=True) as conn:
        deploy_flows(conn, [served, idle])
        yield conn


def register(
    db: psycopg.Connection[Any], flows: list[str], silent_for: str = "0s", stopped: bool = False
) -> uuid.UUID:
    """A worker row as register_worker writes it, whose last heartbeat was ``silent_for`` ago."""
    worker = uuid.uuid4()
    q(db, "select pgflow.register_worker(%s, %s, 'host-a', 42)", worker, flows)
    q(db, "update pgflow.workers set last_heartbeat_at = now() - %s::interval,"
          " stopped_at = case when %s then now() end where worker_id = %s",
      silent_for, stopped, worker)  # fmt: skip
    return worker


def test_live_gone_and_stopped_workers_with_tasks_in_flight(db: psycopg.Connection[Any]) -> None:
    live = register(db, ["served"], "5s")
    gone = register(db, ["served"], "2 minutes")
    stopped = register(db, ["served"], "1 minute", stopped=True)
    ancient = register(db, ["served"], "3 days")
    for _ in range(3):
        start(db, "served")
    claim(db, "served", 2, worker=live)
    claim(db, "served", 1, worker=gone)
    found = {w.worker_id: w for w in list_workers(db)}
    assert set(found) == {live, gone}  # stopped ones and those silent for over a day: --all
    assert (found[live].state, found[live].in_flight) == ("live", 2)
    assert (found[gone].state, found[gone].in_flight) == ("gone", 1)
    assert found[live].flow_slugs == ["served"] and found[live].hostname == "host-a"
    assert found[gone].heartbeat_age == pytest.approx(120, abs=5)
    assert [w.worker_id for w in list_workers(db)] == [live, gone]  # live first
    every = {w.worker_id: w.state for w in list_workers(db, include_all=True)}
    assert every == {live: "live", gone: "gone", stopped: "stopped", ancient: "gone"}
    assert {w.worker_id for w in list_workers(db, live_within=timedelta(minutes=5))} == {
        live, gone,
    }  # fmt: skip
    assert list(found[live].to_json()) == [
        "worker_id", "state", "hostname", "pid", "flow_slugs", "started_at",
        "last_heartbeat_at", "heartbeat_age_s", "stopped_at", "in_flight",
    ]  # fmt: skip


def test_flow_liveness_counts_live_workers_only(db: psycopg.Connection[Any]) -> None:
    register(db, ["served", "other"], "1s")
    register(db, ["idle"], "10 minutes")
    found = {f.flow_slug: f for f in flow_liveness(db, ["served", "idle", "never"])}
    assert (found["served"].live, found["idle"].live, found["never"].live) == (1, 0, 0)
    assert found["idle"].last_seen is not None and found["never"].last_seen is None


def test_check_warns_when_no_live_worker_serves_a_deployed_flow(
    db: psycopg.Connection[Any],
) -> None:
    register(db, ["served"], "1s")
    register(db, ["idle"], "10 minutes")
    never = Flow("never").step("work", lambda input: 1)  # not deployed: nothing to say
    findings = liveness_findings(db, [served, idle, never])
    assert [(f.level, f.message.split(":")[0]) for f in findings] == [
        ("ok", "flow 'served'"),
        ("warning", "flow 'idle'"),
    ]
    warning = findings[1]
    assert "no live worker serves it" in warning.message and "last heartbeat" in warning.message
    assert warning.hint and "pgflow worker" in warning.hint and "30 s" in warning.hint


def test_a_role_that_cannot_read_workers_gets_an_info_line(db_url: str, db: Any) -> None:
    q(db, "drop role if exists telemetry_probe")
    q(db, "create role telemetry_probe nologin")
    try:
        with psycopg.connect(db_url, autocommit=True) as conn:
            conn.execute("grant usage on schema pgflow to telemetry_probe")
            conn.execute("grant select on pgflow.flows, pgflow.steps, pgflow.deps "
                         "to telemetry_probe")  # fmt: skip
            conn.execute("grant execute on function pgflow.flow_checksum(text), "
                         "pgflow.get_flow_shape(text) to telemetry_probe")  # fmt: skip
            conn.execute("set role telemetry_probe")
            (finding,) = liveness_findings(conn, [served])
        assert finding.level == "info" and "not checked" in finding.message
    finally:
        q(db, "drop owned by telemetry_probe")
        q(db, "drop role telemetry_probe")


def test_live_means_three_default_heartbeat_intervals() -> None:
    assert LIVE_WITHIN == timedelta(seconds=3 * DEFAULTS.heartbeat_interval)
