"""``deploy --dev`` racing starts and other deployers of the same slug (docs/guarantees.md).

"A run started while ``deploy --dev`` recreates its flow belongs wholly to the old shape
(and is deleted with it) or wholly to the new one; no task row ever outlives its run;
concurrent ``deploy --dev`` of one slug serialise (the last one wins, none fails)."

Each race holds the first operation's transaction open, lets the second one run into it
(see tests/integration/races.py), commits, and then checks the end state.
"""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from pgflow import Flow
from pgflow.deploy import deploy_flows
from tests.integration.races import orphans, race
from tests.integration.sql.helpers import claim, q, start


def a(input: dict) -> int:
    return 1


def b(a: int) -> int:
    return a + 1


def c(a: int) -> int:
    return a + 2


OLD = Flow("demo").step("a", a).step("b", b, depends_on=["a"])
NEW = Flow("demo").step("a", a).step("c", c, depends_on=["a"])
NEWER = Flow("demo").step("a", a)
OTHER = Flow("other").step("a", a)
FIRST = Flow("alpha").step("a", a)
SECOND = Flow("beta").step("a", a)


def _checksum(conn: psycopg.Connection[Any]) -> str:
    return str(q(conn, "select pgflow.flow_checksum('demo') as c")[0]["c"])


def _assert_runs_match_the_deployed_shape(conn: psycopg.Connection[Any]) -> None:
    """Every run of 'demo' has exactly one step state per deployed step, and tasks only of
    those steps; no state or task row anywhere lacks its run."""
    steps = {
        r["step_slug"]
        for r in q(conn, "select step_slug from pgflow.steps where flow_slug = 'demo'")
    }
    for r in q(conn, "select run_id from pgflow.runs where flow_slug = 'demo'"):
        run_id = r["run_id"]
        states = [
            s["step_slug"]
            for s in q(conn, "select step_slug from pgflow.step_states where run_id = %s", run_id)
        ]
        assert sorted(states) == sorted(steps), f"run {run_id} has steps {states}, not {steps}"
        task_steps = {
            t["step_slug"]
            for t in q(conn, "select step_slug from pgflow.step_tasks where run_id = %s", run_id)
        }
        assert task_steps <= steps, f"run {run_id} has tasks of {task_steps - steps}"
    assert orphans(conn) == {"tasks": 0, "states": 0}


def _deploy(flow: Flow) -> Any:
    return lambda conn: deploy_flows(conn, [flow], dev=True)


def test_deploy_dev_racing_an_uncommitted_start_deletes_that_run(conn, db_url):
    """The start commits first, so its run is of the old shape: the recreate deletes it."""
    deploy_flows(conn, [OLD, OTHER])
    start(conn, "other")
    (result,) = race(db_url, lambda c: start(c, "demo"), _deploy(NEW)).result()
    assert result.action == "recreated" and result.runs_deleted == 1
    assert _checksum(conn) == result.checksum
    assert q(conn, "select count(*) as n from pgflow.runs where flow_slug = 'demo'")[0]["n"] == 0
    _assert_runs_match_the_deployed_shape(conn)
    assert claim(conn, "demo") == []
    assert [t["flow_slug"] for t in claim(conn, "other")] == ["other"]


def test_start_racing_an_uncommitted_deploy_dev_gets_the_new_shape(conn, db_url):
    """The recreate commits first, so the run that waited for it is of the new shape."""
    deploy_flows(conn, [OLD, OTHER])
    start(conn, "other")
    outcome = race(db_url, _deploy(NEW), lambda c: start(c, "demo"))
    run = outcome.result()
    _assert_runs_match_the_deployed_shape(conn)
    assert {
        r["run_id"] for r in q(conn, "select run_id from pgflow.runs where flow_slug = 'demo'")
    } == {run["run_id"]}
    (root,) = claim(conn, "demo")
    assert root["run_id"] == run["run_id"] and root["step_slug"] == "a"
    assert [t["flow_slug"] for t in claim(conn, "other")] == ["other"]


@pytest.mark.parametrize("deployed_before", [True, False], ids=["redeploy", "first-deploy"])
def test_concurrent_deploy_dev_of_one_slug_serialise_and_the_last_wins(
    conn, db_url, deployed_before
):
    if deployed_before:
        deploy_flows(conn, [OLD])
        start(conn, "demo")
    outcome = race(db_url, _deploy(NEW), _deploy(NEWER))
    (result,) = outcome.result()  # never ShapeMismatchError / "already exists with a ..."
    assert outcome.blocked, "the second deployer did not wait for the first"
    assert result.action == "recreated"
    assert _checksum(conn) == result.checksum
    steps = q(conn, "select step_slug from pgflow.steps where flow_slug = 'demo'")
    assert [s["step_slug"] for s in steps] == ["a"]
    _assert_runs_match_the_deployed_shape(conn)


def test_deployers_of_several_flows_take_their_locks_in_slug_order(conn, db_url):
    """A deployer of [beta, alpha] that waits for alpha holds no lock on beta meanwhile, so
    two deployers of overlapping sets of flows queue up instead of deadlocking."""

    def holds_no_flow_lock(watcher: psycopg.Connection[Any], pid: int) -> None:
        held = watcher.execute(
            "select count(*) as n from pg_locks"
            " where pid = %s and locktype = 'advisory' and granted",
            [pid],
        ).fetchone()
        assert held is not None and held["n"] == 0, "it locked beta before alpha"

    outcome = race(
        db_url,
        lambda c: deploy_flows(c, [FIRST]),
        lambda c: deploy_flows(c, [SECOND, FIRST], dev=True),
        while_blocked=holds_no_flow_lock,
    )
    assert [r.action for r in outcome.result()] == ["created", "unchanged"]
