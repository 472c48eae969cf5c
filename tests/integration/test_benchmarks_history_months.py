"""The history-months benchmark's parts on a real database (benchmarks/history_months.py):
its drains finish every run, and a claim on a database with more months holds more locks."""

from __future__ import annotations

import psycopg
import pytest

history_months = pytest.importorskip("benchmarks.history_months")  # a source checkout
flows = pytest.importorskip("benchmarks.flows")


def _open_tasks(url: str) -> int:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "select count(*) from pgflow.step_tasks where status in ('queued', 'started')"
        ).fetchone()
    return int(row[0]) if row else -1


def _locks(url: str) -> int:
    fast, shared = history_months.claim_locks(url)
    return int(fast) + int(shared)


@pytest.mark.parametrize("one_by_one", [False, True], ids=["batch", "one_by_one"])
def test_a_drain_completes_every_run_it_started(db_url: str, one_by_one: bool) -> None:
    flows.deploy(db_url)
    try:
        cpu, rate = history_months.drain(db_url, 40, 10, one_by_one)
    except FileNotFoundError:  # the server's /proc is not this machine's
        pytest.skip("needs the test server on this machine (server CPU from /proc)")
    assert cpu >= 0 and rate > 0  # cpu: 0 when the server is not a process of this machine
    assert _open_tasks(db_url) == 0
    with psycopg.connect(db_url, autocommit=True) as conn:
        row = conn.execute("select count(*) from pgflow.runs where status = 'completed'").fetchone()
    assert row is not None and row[0] == 40


def test_past_months_add_partitions_and_a_claim_locks_each_of_them(db_url: str) -> None:
    flows.deploy(db_url)
    before = _locks(db_url)
    with psycopg.connect(db_url, autocommit=True) as conn:
        added = conn.execute(history_months.ADD_MONTHS, [3]).fetchone()
        partitions = conn.execute(history_months.PARTITIONS).fetchone()
    assert added is not None and added[0] == 3
    assert partitions is not None and partitions[0] == 4 + 3
    assert _locks(db_url) > before  # what the benchmark measures: every month is set up
