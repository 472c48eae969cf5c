"""Live updates over server-sent events, fed by LISTEN on one shared connection."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Callable, Iterator

import httpx2
import psycopg
import pytest

from pgflow.ui.hub import APPLICATION_NAME
from tests.integration.ui.conftest import Runner, Served
from tests.integration.ui.events import Event, events, until
from tests.integration.ui.flows import GATE, gated

TIMEOUT = httpx2.Timeout(20.0)


@contextlib.contextmanager
def stream(url: str) -> Iterator[Iterator[Event]]:
    with httpx2.Client(timeout=TIMEOUT) as client, client.stream("GET", url) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        yield events(response.iter_lines())


def listeners(url: str) -> int:
    """How many connections of the viewer's LISTEN hub are open on the test database."""
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "select count(*) from pg_stat_activity "
            "where application_name = %s and datname = current_database()",
            [APPLICATION_NAME],
        ).fetchone()
    assert row is not None
    return int(row[0])


def test_a_run_page_hears_the_run_complete(serve: Callable[..., Served], runner: Runner) -> None:
    runner.start_worker(gated)
    run = runner.start(gated, {})
    served = serve()
    with stream(f"{served.url}/events/runs/{run.run_id}") as live:
        first = until(live, lambda e: e.name == "run")
        assert first.data["status"] == "started"
        GATE.set()
        done = until(live, lambda e: e.name == "run" and e.data["status"] == "completed")
    assert done.data["steps"] == {"first": "completed", "hold": "completed"}
    assert 'id="run-status">completed' in done.data["html"]
    assert "&lt;script&gt;window.__pwned" in done.data["html"]  # escaped in fragments too
    assert "<script>" not in done.data["html"]


def test_the_runs_list_shows_a_new_run_and_its_completion(
    serve: Callable[..., Served], runner: Runner
) -> None:
    runner.start_worker(gated)
    served = serve()
    with stream(f"{served.url}/events/runs?flow=gated") as live:
        assert "No runs" in until(live, lambda e: e.name == "runs").data["html"]
        run = runner.start(gated, {})
        row = f'<tr data-run="{run.run_id}" data-status='
        started = time.monotonic()
        until(live, lambda e: e.name == "runs" and f'{row}"started"' in e.data["html"])
        assert time.monotonic() - started < 2.5  # a notification, not the fallback refresh
        GATE.set()
        until(live, lambda e: e.name == "runs" and f'{row}"completed"' in e.data["html"])


@pytest.mark.asyncio
async def test_every_browser_shares_one_listen_connection_and_one_feed_per_view(
    serve: Callable[..., Served], runner: Runner
) -> None:
    run = runner.start(gated, {})
    served = serve()
    feeds = served.viewer.live
    urls = [f"{served.url}/events/runs/{run.run_id}"] * 3 + [f"{served.url}/events/runs"] * 2
    async with httpx2.AsyncClient(timeout=TIMEOUT) as client, contextlib.AsyncExitStack() as stack:
        readers = []  # keep each line reader: a collected one closes its stream
        for url in urls:
            response = await stack.enter_async_context(client.stream("GET", url))
            readers.append(response.aiter_lines())
            while not (await anext(readers[-1])).startswith("data: "):
                pass
        assert len(feeds) == 2
        assert listeners(runner.url) == 1
    deadline = time.monotonic() + 10
    while len(feeds) and time.monotonic() < deadline:
        await asyncio.sleep(0.05)  # the server notices closed streams on its own schedule
    assert len(feeds) == 0
    assert listeners(runner.url) == 1  # the hub stays connected, listening on nothing


def test_a_lost_listen_connection_shows_a_banner_and_recovers(
    serve: Callable[..., Served], runner: Runner
) -> None:
    run = runner.start(gated, {})
    served = serve()
    with stream(f"{served.url}/events/runs/{run.run_id}") as live:
        until(live, lambda e: e.name == "run")
        with psycopg.connect(runner.url, autocommit=True) as conn:
            conn.execute(
                "select pg_terminate_backend(pid) from pg_stat_activity "
                "where application_name = %s and datname = current_database()",
                [APPLICATION_NAME],
            )
        assert until(live, lambda e: e.name == "db").data == "down"
        assert until(live, lambda e: e.name == "db").data == "up"
        runner.client.cancel(run.run_id)  # heard through the new connection
        until(live, lambda e: e.name == "run" and e.data["status"] == "cancelled")


def test_an_unknown_run_stream_says_gone(serve: Callable[..., Served], deployed: str) -> None:
    served = serve()
    with stream(f"{served.url}/events/runs/{uuid.uuid4()}") as live:
        assert until(live, lambda e: True).name == "gone"
