"""Fixtures shared by the worker and client tests: deploy flows, run workers in-process.

Everything talks to the real Postgres of :mod:`pgflow.testing` (a fresh database per test).
Workers run with test-friendly settings: no retry backoff, short grace periods.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row
from pytest_asyncio import fixture as async_fixture

from pgflow import AsyncClient, Client, Flow, Worker
from pgflow.deploy import deploy_flows

Deploy = Callable[..., None]
WORKER_DEFAULTS: dict[str, Any] = {
    "poll_interval": 0.5,
    "retry_base_delay": 0.0,
    "shutdown_grace": 5.0,
    "heartbeat_interval": 1.0,
}


@pytest.fixture
def deploy(db_url: str) -> Deploy:
    """Deploy flows (development mode) into the test database."""

    def apply(*flows: Flow) -> None:
        with psycopg.connect(db_url, autocommit=True) as conn:
            deploy_flows(conn, list(flows), dev=True)

    return apply


class WorkerPool:
    """Starts in-process workers and stops every one of them at teardown."""

    def __init__(self, db_url: str) -> None:
        self.db_url = db_url
        self.running: list[tuple[Worker, asyncio.Task[None]]] = []

    def start(self, *flows: Flow, **options: Any) -> Worker:
        """Start a worker for ``flows`` in the background and return it."""
        worker = Worker(list(flows), self.db_url, **{**WORKER_DEFAULTS, **options})
        task = asyncio.create_task(worker.run_async(), name="test worker")
        self.running.append((worker, task))
        return worker

    async def stop(self, worker: Worker, timeout: float = 10.0) -> None:
        """Stop one worker and wait for it to return (re-raising its error)."""
        for candidate, task in self.running:
            if candidate is worker:
                worker.stop()
                await asyncio.wait_for(task, timeout)

    async def close(self) -> None:
        for worker, task in self.running:
            if not task.done():
                worker.stop(immediate=True)
        await asyncio.gather(*(task for _, task in self.running), return_exceptions=True)


@async_fixture
async def workers(db_url: str) -> AsyncIterator[WorkerPool]:
    """Start workers with ``workers.start(flow, ...)``; all are stopped after the test."""
    pool = WorkerPool(db_url)
    yield pool
    await pool.close()


@async_fixture
async def aclient(db_url: str) -> AsyncIterator[AsyncClient]:
    """An :class:`AsyncClient` on the test database."""
    async with AsyncClient(db_url) as client:
        yield client


@pytest.fixture
def client(db_url: str) -> Iterator[Client]:
    """A :class:`Client` on the test database."""
    with Client(db_url) as sync_client:
        yield sync_client


def tasks_of(conn: psycopg.Connection[Any], run_id: Any) -> list[dict[str, Any]]:
    """Every task row of a run, ordered by step and index."""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            "select * from pgflow.step_tasks where run_id = %s order by step_slug, task_index",
            [run_id],
        )
        return cur.fetchall()
