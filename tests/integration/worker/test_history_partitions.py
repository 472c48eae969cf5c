"""Workers create the coming months' history partitions; a failure is logged, not raised."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from typing import Any

import psycopg
import pytest

from pgflow import Flow
from pgflow.db.connection import open_async_pool
from pgflow.worker.partitions import HistoryPartitions
from pgflow.worker.store import WorkerStore
from tests.integration.runtime import Deploy, WorkerPool

flow = Flow("housekeeping").step("a", lambda input: 1)


def _months(db_url: str) -> list[str]:
    with psycopg.connect(db_url, autocommit=True) as conn:
        rows = conn.execute("select month from pgflow.history_partitions()").fetchall()
    return [str(r[0]) for r in rows]


def _drop_month(db_url: str, month: str) -> None:
    suffix = month.replace("-", "")
    with psycopg.connect(db_url, autocommit=True) as conn:
        for table in ("step_tasks", "step_states", "runs"):
            conn.execute(f"drop table pgflow.{table}_p{suffix}".encode())


async def test_a_worker_creates_missing_months_at_start_up(
    db_url: str, deploy: Deploy, workers: WorkerPool
) -> None:
    deploy(flow)
    before = _months(db_url)
    _drop_month(db_url, before[1])
    _drop_month(db_url, before[2])
    assert _months(db_url) == [before[0], "default"]
    workers.start(flow, retention_interval=60)
    deadline = time.monotonic() + 20
    while _months(db_url) != before:
        assert time.monotonic() < deadline, _months(db_url)
        await asyncio.sleep(0.05)


async def test_a_pass_that_cannot_get_its_locks_is_logged_and_retried(
    db_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    months = _months(db_url)
    _drop_month(db_url, months[2])
    pool = await open_async_pool(db_url, min_size=1, max_size=2)
    try:
        job = HistoryPartitions(WorkerStore(pool, uuid.uuid4(), ["housekeeping"]), 60)
        with psycopg.connect(db_url) as other:  # a long transaction on the default partition
            other.execute("select count(*) from pgflow.runs_default")
            with caplog.at_level(logging.WARNING, logger="pgflow.worker"):
                assert await job.guarded_pass() == 0
            other.rollback()
        failures: list[Any] = [
            r for r in caplog.records if "history partitions failed" in r.message
        ]
        assert failures and "lock timeout" in failures[0].message
        assert await job.guarded_pass() == 1
        assert _months(db_url) == months
    finally:
        await pool.close()
