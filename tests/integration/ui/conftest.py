"""Fixtures of the viewer's tests: deployed flows, runs in known states, the app.

``viewer`` is Starlette's TestClient on the app (its lifespan opens the pool and the
LISTEN hub); ``served`` runs the real server (uvicorn) in a thread on a free port, for
event streams and the browser. Runs are driven by a real Worker in a thread.
"""

from __future__ import annotations

import asyncio
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest
from psycopg import sql
from starlette.testclient import TestClient

from pgflow import Client, Flow, Worker
from pgflow.deploy import deploy_flows
from pgflow.models import Run
from pgflow.testing import with_database
from pgflow.ui.app import create_app
from pgflow.ui.server import prepare
from pgflow.ui.settings import UiSettings
from pgflow.ui.viewer import Viewer
from tests.integration.runtime import WORKER_DEFAULTS
from tests.integration.ui.flows import GATE, gated, shop

BASE = "http://127.0.0.1:8765"
FLOWS = (shop, gated)


@pytest.fixture
def deployed(db_url: str) -> str:
    """The test database with the test flows deployed; its URL."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        deploy_flows(conn, list(FLOWS), dev=True)
    return db_url


class Runner:
    """Runs flows to their end with a real worker (in a thread)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.client = Client(url)
        self.worker: Worker | None = None
        self.thread: threading.Thread | None = None

    def start_worker(self, *flows: Flow) -> None:
        """Start a worker for ``flows`` (all test flows by default) in a thread."""
        self.worker = Worker(list(flows or FLOWS), self.url, **WORKER_DEFAULTS)
        self.thread = threading.Thread(target=self.worker.run, daemon=True)
        self.thread.start()

    def stop_worker(self) -> None:
        if self.worker is not None and self.thread is not None:
            self.worker.stop()
            self.thread.join(15)
            if self.thread.is_alive():  # say where it is stuck: the stack of its thread
                frame = sys._current_frames().get(self.thread.ident or 0)
                stack = "".join(traceback.format_stack(frame)) if frame else "(no frame)"
                raise AssertionError(
                    f"the worker did not stop within 15 s; its thread:\n{stack}"
                    f"its tasks:\n{_tasks_of(self.worker)}"
                )
            self.worker = self.thread = None

    def start(self, flow: Flow, value: Any) -> Run:
        return self.client.start(flow, value)

    def finish(self, flow: Flow, value: Any, timeout: float = 20) -> Run:
        """Start a run and wait until it finishes (a worker must be running)."""
        started = self.client.start(flow, value)
        return list(self.client.watch(started.run_id, timeout))[-1]


def _tasks_of(worker: Worker) -> str:
    """Where each task of a worker's event loop waits (a diagnostic: read from another
    thread while the loop runs, so it may miss a task that changes meanwhile)."""
    loop = getattr(worker, "_loop", None)
    if loop is None:
        return "(no event loop)"
    lines = []
    for task in list(asyncio.all_tasks(loop)):
        frames = task.get_stack(limit=3)
        where = " < ".join(f"{f.f_code.co_name}:{f.f_lineno}" for f in reversed(frames))
        lines.append(f"  {task.get_name()}: {where or '(not started)'}")
    return "\n".join(lines)


@pytest.fixture
def runner(deployed: str) -> Iterator[Runner]:
    """Start runs and workers; every worker is stopped after the test."""
    GATE.clear()
    running = Runner(deployed)
    yield running
    GATE.set()
    running.stop_worker()
    running.client.close()


@pytest.fixture
def make_viewer(deployed: str) -> Iterator[Callable[..., TestClient]]:
    """``make_viewer(read_only=..., token=..., url=...)``: a TestClient on a fresh app."""
    clients: list[TestClient] = []

    def make(url: str | None = None, **settings: Any) -> TestClient:
        app = create_app(UiSettings(**settings), url or deployed)
        client = TestClient(app, base_url=BASE, follow_redirects=False)
        client.__enter__()
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def viewer(make_viewer: Callable[..., TestClient]) -> TestClient:
    """The viewer with default settings (actions on, no token)."""
    return make_viewer()


@dataclass
class Served:
    """A real server in a thread."""

    url: str
    settings: UiSettings
    viewer: Viewer


@pytest.fixture
def serve(deployed: str) -> Iterator[Callable[..., Served]]:
    """``serve(read_only=..., token=...)``: run uvicorn on a free port until the test ends."""
    stops: list[Callable[[], None]] = []

    def start(url: str | None = None, **options: Any) -> Served:
        settings = UiSettings(port=0, **options)
        server, sock, bound = prepare(settings, url or deployed)
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
        thread.start()
        deadline = time.monotonic() + 15
        while not server.started and thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.01)  # uvicorn has no "started" event to wait on
        assert server.started, "the viewer did not start"

        def stop() -> None:
            server.should_exit = True
            thread.join(10)
            sock.close()

        stops.append(stop)
        return Served(bound.url().rstrip("/"), bound, server.viewer)

    yield start
    for stop in stops:
        stop()


@pytest.fixture
def reader_url(deployed: str) -> Iterator[str]:
    """A login role that is only a member of pgflow_reader; its URL."""
    name = f"pgflow_ui_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(deployed, autocommit=True) as conn:
        conn.execute(
            sql.SQL("create role {} login in role pgflow_reader").format(sql.Identifier(name))
        )
    dbname = str(psycopg.conninfo.conninfo_to_dict(deployed)["dbname"])
    yield psycopg.conninfo.make_conninfo(with_database(deployed, dbname), user=name)
    with psycopg.connect(deployed, autocommit=True) as conn:
        conn.execute(
            sql.SQL(
                "select pg_terminate_backend(pid) from pg_stat_activity where usename = {}"
            ).format(sql.Literal(name))
        )
        conn.execute(sql.SQL("drop owned by {}").format(sql.Identifier(name)))
        conn.execute(sql.SQL("drop role {}").format(sql.Identifier(name)))
