"""An interrupt while a watch waits reaches the caller; its clean-up never replaces it.

Ctrl+C can land in psycopg between sending a query and waiting for its result. psycopg
then re-raises the ``KeyboardInterrupt`` with the query still in flight, and any further
statement on that connection fails ("another command is already in progress"). The
watch's clean-up (``UNLISTEN``, removing its registration) once raised that failure in
place of the interrupt, which ``watch`` took for a lost connection: it reconnected and
waited on, and ``pgflow start --wait`` ignored Ctrl+C. The subclasses below put the
connection in exactly that state (a query sent, its result unread) and raise the
interrupt, deterministically.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Any

import psycopg
import pytest

from pgflow import AsyncClient, Client, Flow, Run
from tests.integration.runtime import Deploy

patient = Flow("watch_interrupted")


@patient.step()
def never_run(input: dict[str, Any]) -> int:  # no worker serves it: the run stays live
    return 1


IN_FLIGHT = b"select pg_sleep(0.3)"


class InterruptedClient(Client):
    """Its first read of a run is cut short by Ctrl+C with the query still in flight."""

    interrupted = False

    def _fetch(self, conn: psycopg.Connection[Any], rid: uuid.UUID) -> Run:
        if not self.interrupted:
            self.interrupted = True
            conn.pgconn.send_query(IN_FLIGHT)
            raise KeyboardInterrupt
        return super()._fetch(conn, rid)


class CancelledClient(AsyncClient):
    """Its first read of a run is cancelled with the query still in flight."""

    interrupted = False

    async def _fetch(self, conn: psycopg.AsyncConnection[Any], rid: uuid.UUID) -> Run:
        if not self.interrupted:
            self.interrupted = True
            conn.pgconn.send_query(IN_FLIGHT)
            raise asyncio.CancelledError
        return await super()._fetch(conn, rid)


def _rollbacks_tried(caplog: pytest.LogCaptureFixture) -> list[str]:
    """psycopg's warnings about a rollback it tried on a connection left mid-query."""
    return [r.getMessage() for r in caplog.records if r.name == "psycopg"]


@pytest.mark.parametrize("listen", ["pooled", "direct"])
def test_ctrl_c_during_a_watch_query_reaches_the_caller(
    db_url: str, deploy: Deploy, caplog: pytest.LogCaptureFixture, listen: str
) -> None:
    deploy(patient)
    caplog.set_level(logging.WARNING)
    with InterruptedClient(db_url, listen_url=db_url) as client:
        client._pooled = listen == "direct"  # as behind PgBouncer: LISTEN on listen_url
        run = client.start(patient, {})
        with pytest.raises(KeyboardInterrupt):
            client.wait(run.run_id, timeout=5)
        assert client.get_run(run.run_id).status == "started"  # the pool serves on
    assert _rollbacks_tried(caplog) == []  # the connection was closed, not rolled back


@pytest.mark.parametrize("listen", ["pooled", "direct"])
async def test_cancelling_during_a_watch_query_reaches_the_caller(
    db_url: str, deploy: Deploy, caplog: pytest.LogCaptureFixture, listen: str
) -> None:
    deploy(patient)
    caplog.set_level(logging.WARNING)
    async with CancelledClient(db_url, listen_url=db_url) as client:
        client._pooled = listen == "direct"
        run = await client.start(patient, {})
        with pytest.raises(asyncio.CancelledError):
            await client.wait(run.run_id, timeout=5)
        assert (await client.get_run(run.run_id)).status == "started"
    assert _rollbacks_tried(caplog) == []
