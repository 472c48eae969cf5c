"""Workers apply Flow(..., retention=...): old finished runs go, one worker at a time."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from pgflow import Flow, Worker
from pgflow.db.connection import open_async_pool
from pgflow.worker import retention as retention_module
from pgflow.worker.retention import Retention
from pgflow.worker.store import WorkerStore
from tests.integration.runtime import Deploy, WorkerPool

kept = Flow("kept_forever").step("a", lambda input: 1)
short = Flow("short_lived", retention="1d").step("a", lambda input: 1)
bystander = Flow("bystander").step("a", lambda input: 1)


def _rows(db_url: str, sql: str, *params: Any) -> list[dict[str, Any]]:
    with psycopg.connect(db_url, autocommit=True, row_factory=dict_row) as conn:
        return conn.execute(sql, params or None).fetchall()


def _history(db_url: str, runs_per_flow: int = 3) -> None:
    """For each flow: finished runs 2 days old, plus one live run just as old."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        for flow in ("kept_forever", "short_lived"):
            for _ in range(runs_per_flow + 1):
                conn.execute("select pgflow.start_flow(%s, '{}')", [flow])
        conn.execute(
            "select pgflow.cancel_run(run_id) from pgflow.runs"
            " where run_id not in (select distinct on (flow_slug) run_id from pgflow.runs"
            " order by flow_slug, run_id)"
        )
        conn.execute(
            "update pgflow.runs set started_at = now() - interval '2 days',"
            " finished_at = case when status <> 'started' then now() - interval '2 days' end"
        )


def _left(db_url: str) -> list[tuple[str, str]]:
    rows = _rows(db_url, "select flow_slug, status from pgflow.runs order by 1, 2")
    return [(r["flow_slug"], r["status"]) for r in rows]


async def _until(condition: Any, timeout: float = 20.0) -> None:
    """Wait for a database condition the worker brings about in the background."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def test_a_worker_prunes_runs_past_their_flow_retention(
    db_url: str, deploy: Deploy, workers: WorkerPool
) -> None:
    deploy(kept, short, bystander)
    _history(db_url)
    assert len(_left(db_url)) == 8
    workers.start(bystander, retention_interval=60)  # any worker prunes every flow
    expected = [("kept_forever", "cancelled")] * 3 + [
        ("kept_forever", "started"),
        ("short_lived", "started"),  # live runs are never pruned
    ]
    await _until(lambda: _left(db_url) == expected)


async def test_one_worker_at_a_time_and_in_batches(
    db_url: str, deploy: Deploy, monkeypatch: pytest.MonkeyPatch
) -> None:
    deploy(kept, short)
    _history(db_url, runs_per_flow=5)
    monkeypatch.setattr(retention_module, "BATCH", 2)
    pool = await open_async_pool(db_url, min_size=1, max_size=2)
    try:
        retention = Retention(WorkerStore(pool, uuid.uuid4(), ["short_lived"]), 60)
        with psycopg.connect(db_url) as other:  # another worker, mid-pass
            other.execute("select pgflow.apply_retention(1)")
            assert await retention.apply() == 0
            other.rollback()
        assert len(_left(db_url)) == 12
        assert await retention.apply() == 5  # batches of 2, 2, 1: the short one ends it
        assert _left(db_url) == [("kept_forever", "cancelled")] * 5 + [
            ("kept_forever", "started"),
            ("short_lived", "started"),
        ]
    finally:
        await pool.close()


def test_retention_interval_0_turns_it_off_and_bad_values_are_refused() -> None:
    assert Worker(short, retention_interval=0).settings.retention_interval == 0
    with pytest.raises(Exception, match="retention_interval must be a number of seconds"):
        Worker(short, retention_interval=-1)
