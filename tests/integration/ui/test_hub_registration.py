"""The viewer's hub registers every channel it LISTENs on (transactions notify only
registered listeners), renews the registrations, and removes them with the channel."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from pgflow.ui import registry
from pgflow.ui.hub import Hub


def rows(db_url: str, sql: str, *params: Any) -> list[dict[str, Any]]:
    with psycopg.connect(db_url, autocommit=True, row_factory=dict_row) as conn:
        cur = conn.execute(sql, params or None)
        return cur.fetchall() if cur.description else []


async def got(notes: asyncio.Queue[tuple[str, str]], timeout: float = 5.0) -> tuple[str, str]:
    async with asyncio.timeout(timeout):
        return await notes.get()


async def test_the_hub_registers_its_channels_and_is_notified(db_url: str) -> None:
    rows(db_url, "select pgflow.create_flow('f'), pgflow.add_step('f', 'a')")
    run_id = uuid.uuid4()
    notes: asyncio.Queue[tuple[str, str]] = asyncio.Queue()

    def notice(channel: str, payload: str) -> None:
        notes.put_nowait((channel, payload))

    hub = Hub(db_url)
    await hub.start()
    try:
        await hub.listen(f"pgflow_run_{run_id}", notice)
        await hub.listen("pgflow_tasks", notice)
        registered = "select run_id, flow_slug, waiting from pgflow.listeners order by flow_slug"
        assert rows(db_url, registered) == [
            {"run_id": None, "flow_slug": "*", "waiting": True},
            {"run_id": run_id, "flow_slug": None, "waiting": True},
        ]
        rows(db_url, "select pgflow.start_flow('f', '{}', %s)", run_id)
        received = {await got(notes), await got(notes), await got(notes)}
        assert ("pgflow_tasks", "f") in received
        assert {c for c, _ in received} == {"pgflow_tasks", f"pgflow_run_{run_id}"}
        await hub.unlisten("pgflow_tasks", notice)
        assert rows(db_url, "select run_id from pgflow.listeners") == [{"run_id": run_id}]
        await hub.unlisten(f"pgflow_run_{run_id}", notice)
        assert rows(db_url, "select count(*) as n from pgflow.listeners") == [{"n": 0}]
    finally:
        await hub.stop()


async def test_a_lapsed_registration_is_renewed_and_its_feeds_poked(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(registry, "RENEW", 0.05)  # renew at once, whatever lapsed meanwhile
    notes: asyncio.Queue[tuple[str, str]] = asyncio.Queue()
    hub = Hub(db_url)
    await hub.start()
    try:
        await hub.listen("pgflow_tasks", lambda c, p: notes.put_nowait((c, p)))
        rows(db_url, "delete from pgflow.listeners")  # as if it had expired and gone
        assert await got(notes) == ("pgflow_tasks", "")  # a poke: read again
        deadline = time.monotonic() + 5
        while not rows(db_url, "select 1 from pgflow.listeners"):
            assert time.monotonic() < deadline
            await asyncio.sleep(0.02)
    finally:
        await hub.stop()
