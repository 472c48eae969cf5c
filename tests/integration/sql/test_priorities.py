"""Priorities: higher-priority runs are claimed first; runs take turns within a priority."""

from __future__ import annotations

import psycopg
import pytest
from psycopg.types.json import Jsonb

from pgflow import Flow
from pgflow.deploy import deploy_flows
from pgflow.errors import DefinitionError
from tests.integration.sql.helpers import claim, complete, define, fail, one, q


def start(conn: psycopg.Connection, flow: str, input: object, priority: int | None = None):
    return one(
        conn,
        "select * from pgflow.start_flow(%s, %s, priority => %s)",
        flow,
        Jsonb(input),
        priority,
    )["run_id"]


def test_a_high_priority_run_is_claimed_before_a_backlog_of_low_ones(conn):
    define(conn, "jobs", ("m", [], {"step_type": "map"}))
    backlog = [start(conn, "jobs", list(range(20))) for _ in range(5)]
    urgent = start(conn, "jobs", [1, 2, 3], priority=5)
    got = claim(conn, "jobs", 3)
    assert [t["run_id"] for t in got] == [urgent] * 3
    assert {t["run_id"] for t in claim(conn, "jobs", 5)} <= set(backlog)
    # a negative priority waits for the default ones
    later = start(conn, "jobs", [1], priority=-1)
    drained = [t["run_id"] for t in claim(conn, "jobs", 200)]
    assert drained[-1] == later and later not in drained[:-1]


def test_runs_take_turns_within_a_priority(conn):
    define(conn, "jobs", ("m", [], {"step_type": "map"}))
    start(conn, "jobs", list(range(30)))  # a low-priority backlog
    big = start(conn, "jobs", list(range(30)), priority=3)
    small = start(conn, "jobs", [1], priority=3)
    got = claim(conn, "jobs", 2)
    assert sorted(str(t["run_id"]) for t in got) == sorted([str(big), str(small)])


def test_priority_holds_across_flows_and_for_retries(conn):
    define(conn, "low", ("m", [], {"step_type": "map"}), max_attempts=3, base_delay=0)
    define(conn, "high", ("a", []), max_attempts=3, base_delay=0)
    start(conn, "low", list(range(10)))
    urgent = start(conn, "high", {}, priority=1)
    first = claim(conn, ["low", "high"], 1)
    assert [t["run_id"] for t in first] == [urgent]
    fail(conn, first[0])  # retried at once (base_delay 0): tagged in its band again
    again = claim(conn, ["low", "high"], 1)
    assert [(t["run_id"], t["attempt"]) for t in again] == [(urgent, 2)]
    complete(conn, again[0], 1)


def test_the_flow_priority_is_the_default_and_a_start_overrides_it(conn):
    q(conn, "select pgflow.create_flow('tuned', priority => 7)")
    q(conn, "select pgflow.add_step('tuned', 'a')")
    runs = [start(conn, "tuned", {}), start(conn, "tuned", {}, priority=-3)]
    stored = q(conn, "select priority from pgflow.runs where run_id = any(%s)", runs)
    assert sorted(r["priority"] for r in stored) == [-3, 7]
    notices: list[str] = []
    conn.add_notice_handler(lambda diag: notices.append(diag.message_primary or ""))
    q(conn, "select pgflow.create_flow('tuned')")  # re-applied without: back to 0
    assert one(conn, "select priority from pgflow.flows where flow_slug = 'tuned'") == {
        "priority": 0
    }
    assert any("priority updated (7 -> 0)" in n for n in notices), notices


@pytest.mark.parametrize(
    ("sql", "state"),
    [
        ("select pgflow.create_flow('bad', priority => 101)", "PGF03"),
        ("select pgflow.start_flow('tuned', '{}', priority => -101)", "PGF08"),
    ],
)
def test_out_of_range_priorities_are_refused(conn, sql, state):
    q(conn, "select pgflow.create_flow('tuned')")
    with pytest.raises(psycopg.Error) as caught:
        q(conn, sql)
    assert caught.value.sqlstate == state
    assert "-100 to 100" in str(caught.value)  # the message or its hint says the range
    assert one(conn, "select count(*) as n from pgflow.runs") == {"n": 0}


def test_deploy_stores_and_reports_a_flow_priority(db_url):
    flow = Flow("ranked", priority=10).step("a", lambda input: 1)
    with psycopg.connect(db_url, autocommit=True) as conn:
        (created,) = deploy_flows(conn, [flow])
        (same,) = deploy_flows(conn, [flow])
        (changed,) = deploy_flows(conn, [Flow("ranked", priority=-2).step("a", lambda input: 1)])
        stored = one(conn, "select priority from pgflow.flows where flow_slug = 'ranked'")
    assert (created.action, same.action, changed.action) == (
        "created",
        "unchanged",
        "options updated",
    )
    assert "flow.priority 10 -> -2" in changed.detail
    assert stored == {"priority": -2}


@pytest.mark.parametrize("value", [101, -101, 1.5, True, "3"])
def test_a_flow_priority_out_of_range_is_refused_at_definition(value):
    with pytest.raises(DefinitionError) as caught:
        Flow("ranked", priority=value)
    assert "ranked" in str(caught.value) and "-100 to 100" in str(caught.value)
