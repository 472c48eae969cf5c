"""Upgrading a database with runs in flight (docs/contributing.md: changing the schema).

For every released version older than the packaged head, once per module: install that
release's migrations only, deploy flows, leave runs in every state with the old SQL
functions (:mod:`tests.migration.upgrade_scenario`), run the installer with every
packaged migration, then finish everything with a real worker of this version. The tests
below each check one consequence of that single upgrade.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from pgflow.db.schema import InstallResult
from pgflow.migrations import migrations
from pgflow.testing import DatabaseFactory
from tests.migration.upgrade_harness import (
    OldWorker,
    catalog_difference,
    deploy_as_released,
    from_versions,
    head_version,
    install_version,
    run_states,
    snapshot,
    unchanged,
    upgrade,
)
from tests.migration.upgrade_scenario import (
    FLOWS,
    Outcome,
    Scenario,
    finish_with_new_workers,
    leave_runs_in_every_state,
)


@dataclass
class Upgraded:
    """One database taken from an old release to head, with its runs finished."""

    from_version: int
    url: str
    installed: InstallResult
    scenario: Scenario
    states_before: dict[uuid.UUID, tuple[str, list[str]]]
    outcome: Outcome
    finished_before: dict[tuple[Any, ...], Any]
    finished_after: dict[tuple[Any, ...], Any]
    tasks: list[dict[str, Any]]


@pytest.fixture(scope="module", params=from_versions(), ids=lambda v: f"from_{v:04d}")
def upgraded(
    request: pytest.FixtureRequest, pgflow_databases: DatabaseFactory
) -> Iterator[Upgraded]:
    migrations.cache_clear()  # the files may have been regenerated since the last read
    url = pgflow_databases.create(schema=False)
    try:
        yield upgrade_with_runs_in_flight(url, request.param)
    finally:
        pgflow_databases.drop(url)


def upgrade_with_runs_in_flight(url: str, from_version: int) -> Upgraded:
    install_version(url, from_version)
    with psycopg.connect(url, autocommit=True) as conn:
        deploy_as_released(conn, FLOWS)
        scenario = leave_runs_in_every_state(conn)
        states = run_states(conn, list(scenario.run_ids().values()))
        finished = list(scenario.finished.values())
        before = snapshot(conn, finished)
    installed = upgrade(url)
    outcome = asyncio.run(finish_with_new_workers(url, scenario))
    with psycopg.connect(url, autocommit=True) as conn:
        after = snapshot(conn, finished)
        live = [run_id for run_id, _ in scenario.live.values()]
        with conn.cursor(row_factory=dict_row) as cur:
            statement = (
                "select run_id, step_slug, task_index, status, started_at "
                "from pgflow.step_tasks where run_id = any(%s)"
            )
            tasks = cur.execute(statement, [live]).fetchall()
    return Upgraded(from_version, url, installed, scenario, states, outcome, before, after, tasks)


def test_the_old_release_left_runs_in_every_state(upgraded: Upgraded) -> None:
    run_ids = upgraded.scenario.run_ids()
    states = {name: upgraded.states_before[run_id] for name, run_id in run_ids.items()}
    assert states == {
        "completed": ("completed", ["completed", "completed"]),
        "failed": ("failed", ["completed", "failed"]),
        "cancelled": ("cancelled", ["cancelled"]),
        "retrying": ("started", ["queued"]),
        "leased, reported late": ("started", ["started"]),
        "queued": ("started", ["queued"]),
        "map half done": ("started", ["completed", "completed", "queued", "queued"]),
        "diamond, one branch done": ("started", ["completed", "completed", "queued"]),
        "waiting on start_delay": ("started", ["queued"]),
        "lease expiring after the upgrade": ("started", ["started"]),
    }


def test_the_installer_applies_every_later_migration(upgraded: Upgraded) -> None:
    applied = [m.id for m in upgraded.installed.applied]
    assert applied == list(range(upgraded.from_version + 1, head_version() + 1))
    assert upgraded.installed.version == head_version()


def test_every_live_run_completes_with_the_right_output(upgraded: Upgraded) -> None:
    outputs = {name: run.output for name, run in upgraded.outcome.runs.items()}
    expected = {name: output for name, (_, output) in upgraded.scenario.live.items()}
    assert outputs == expected
    assert {run.status for run in upgraded.outcome.runs.values()} == {"completed"}


def test_each_outstanding_task_runs_exactly_once_after_the_upgrade(upgraded: Upgraded) -> None:
    # Tasks done before the upgrade never run again; the dead worker's task runs once more,
    # as attempt 2 (its lease expiry counts attempt 1); every other task runs once.
    assert sorted(upgraded.outcome.executions) == sorted(upgraded.scenario.expected)


def test_every_task_of_a_live_run_ends_completed(upgraded: Upgraded) -> None:
    statuses = {
        (str(t["run_id"]), t["step_slug"], t["task_index"]): t["status"] for t in upgraded.tasks
    }
    assert set(statuses.values()) == {"completed"}, statuses
    # three chains, lease, delayed, the map and its fan-in, the diamond
    assert len(statuses) == 3 * 2 + 1 + 1 + 4 + 1 + 4


def test_waiting_tasks_keep_their_backoff_and_start_delay(upgraded: Upgraded) -> None:
    started = {(t["run_id"], t["step_slug"]): t["started_at"] for t in upgraded.tasks}
    for task, not_before in upgraded.scenario.not_before.items():
        assert started[task] >= not_before, task


def test_a_lease_taken_before_the_upgrade_is_still_honoured(upgraded: Upgraded) -> None:
    report = upgraded.outcome.live_lease_report
    assert (report["status"], report["output"]) == (
        "completed",
        upgraded.scenario.live_lease_output,
    )


def test_a_late_report_of_the_expired_lease_changes_nothing(upgraded: Upgraded) -> None:
    dead = upgraded.scenario.dead_lease
    assert dead is not None
    with psycopg.connect(upgraded.url, autocommit=True) as conn:
        row = OldWorker(conn).complete(dead, -1)
    assert (row["status"], row["output"], row["attempts_count"]) == ("completed", 21, 2)


def test_finished_runs_are_unchanged(upgraded: Upgraded) -> None:
    report = upgraded.outcome.cancelled_lease_report
    assert report["status"] == "cancelled" and report["output"] is None
    # 3 runs, 6 step states, 5 tasks (the cancelled run's `second` never had one)
    assert len(upgraded.finished_before) == 3 + 6 + 5
    assert unchanged(upgraded.finished_before, upgraded.finished_after) == []


def test_the_upgraded_schema_matches_a_fresh_install(
    upgraded: Upgraded, pgflow_databases: DatabaseFactory
) -> None:
    fresh = pgflow_databases.create()
    try:
        difference = catalog_difference(fresh, upgraded.url)
    finally:
        pgflow_databases.drop(fresh)
    # A fresh install runs the same migrations on an empty schema, and test_convergence
    # compares that with the schema files; this catches a delta whose effect depends on
    # the rows already there (runs in flight included).
    assert difference == "", (
        f"An upgrade from {upgraded.from_version:04d} builds another schema than a fresh "
        "install: a delta in pgflow/sql/upgrades/ acts differently on a database that holds "
        f"data.\n{difference}"
    )
