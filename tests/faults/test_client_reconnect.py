"""Clients ride out a Postgres restart by themselves (a private server is restarted).

* A call after the restart succeeds: the pool tests each connection before lending it,
  so one that the restart broke is replaced instead of failing the caller.
* ``wait`` / ``watch`` running across a restart or an outage reconnect, LISTEN again and
  read the run again, so the completion is not missed.
* A connection the caller passed in is the caller's to replace: ``wait`` raises.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import psycopg
import pytest
from psycopg.types.json import Jsonb

from pgflow import AsyncClient, Client, DatabaseError, Run
from tests.integration.sql.helpers import claim, define
from tests.private_postgres import PrivateServer


@pytest.fixture
def url(private_pg: PrivateServer, fault_db: str) -> str:
    with psycopg.connect(fault_db, autocommit=True) as conn:
        define(conn, "solo", ("only", []))
    return fault_db


def finish(url: str) -> None:
    """Complete every claimable task of ``solo`` (a worker, in SQL)."""
    with psycopg.connect(url, autocommit=True) as conn:
        for task in claim(conn, "solo"):
            conn.execute(
                "select pgflow.complete_task(%s, %s, %s, %s, %s)",
                [task["run_id"], "only", 0, Jsonb("done"), task["attempt"]],
            )


def test_sync_client_calls_and_waits_across_restarts(private_pg: PrivateServer, url: str) -> None:
    with Client(url) as client:
        run = client.start("solo", {})
        private_pg.restart()
        assert client.get_run(run.run_id).status == "started"  # a fresh connection
        results: list[Run | BaseException] = []

        def wait() -> None:
            try:
                results.append(client.wait(run.run_id, timeout=60))
            except BaseException as exc:  # noqa: BLE001 - checked below
                results.append(exc)

        waiter = threading.Thread(target=wait)
        waiter.start()
        try:
            private_pg.restart()
            private_pg.outage(1.0)
            finish(url)
        finally:
            waiter.join(90)
        assert [r.status for r in results if isinstance(r, Run)] == ["completed"], results
        second = client.start("solo", {})  # and the client is still usable
        assert second.status == "started"


async def test_async_client_calls_and_waits_across_restarts(
    private_pg: PrivateServer, url: str
) -> None:
    async with AsyncClient(url) as client:
        run = await client.start("solo", {})
        await asyncio.to_thread(private_pg.restart)
        assert (await client.get_run(run.run_id)).status == "started"
        waiting = asyncio.create_task(client.wait(run.run_id, timeout=60))
        await asyncio.sleep(0.2)  # let it LISTEN (ordering only; the result is asserted)
        await asyncio.to_thread(private_pg.restart)
        await asyncio.to_thread(private_pg.outage, 1.0)
        await asyncio.to_thread(finish, url)
        assert (await asyncio.wait_for(waiting, 90)).status == "completed"


def test_a_callers_own_connection_is_not_replaced(private_pg: PrivateServer, url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        client = Client(connection=conn)
        run = client.start("solo", {})
        private_pg.restart()
        with pytest.raises(DatabaseError) as caught:
            client.wait(run.run_id, timeout=30)
    assert caught.value.__cause__ is not None
    cause: Any = caught.value.__cause__
    assert isinstance(cause, psycopg.OperationalError)
