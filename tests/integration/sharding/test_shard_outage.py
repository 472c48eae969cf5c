"""A shard killed under load stalls only its own runs; after its restart every run finishes
exactly once.

Three shard servers behind a PL/Proxy server (:mod:`tests.sharding_clusters`). One
sharded worker (``Worker(shards=...)``: one claim loop per shard) serves chains and maps
that a client starts through the proxy. In the middle of the load shard 1's server is
SIGKILLed, as if its host died. Then:

* every run on shards 0 and 2 completes while shard 1 is down, and runs started through
  the proxy meanwhile (no run id) all land on shards 0 and 2 and complete too;
* reading a run of shard 1 through the proxy fails with PGF20 naming shard 1, and the
  worker logs ``shard 1: database unavailable``;
* shard 1 is started again (crash recovery); its runs finish and the worker logs
  ``shard 1: database available again``;
* on every shard, every run completed exactly once with the right output, every task
  exactly once by the attempt holding its lease (:func:`tests.faults.audit.check_invariants`).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import psycopg
import pytest

from pgflow import Client, Worker
from pgflow.errors import DatabaseError
from pgflow.sharding import deploy_to_shards
from tests.faults.audit import Figures, check_invariants, install_audit
from tests.integration.sharding import flows
from tests.integration.sharding.flows import FLOWS, chain, expected_output, fanout
from tests.sharding_clusters import ShardedClusters

DEADLINE = 60.0  # seconds for any one wait below; generous on a loaded 2-core machine


def count(url: str, statement: str) -> int:
    with psycopg.connect(url, autocommit=True, connect_timeout=3) as conn:
        row = conn.execute(statement.encode()).fetchone()
    return int(row[0]) if row else 0


def wait_until(what: str, check: Callable[[], bool]) -> None:
    """Poll ``check`` until true (a readiness wait, bounded)."""
    deadline = time.monotonic() + DEADLINE
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"still not true after {DEADLINE}s: {what}")
        time.sleep(0.1)


LIVE = "select count(*) from pgflow.runs where status = 'started'"
DONE_TASKS = "select count(*) from pgflow.step_tasks where status = 'completed'"


def start(client: Client, proxy: str, n: int, expected: dict[Any, Any], where: dict[Any, int]):  # type: ignore[no-untyped-def]
    slug, payload = (chain.slug, {"n": n}) if n % 4 else (fanout.slug, list(range(n, n + 25)))
    run = client.start(slug, payload)
    expected[run.run_id] = expected_output(slug, payload)
    where[run.run_id] = int(count(proxy, f"select pgflow_proxy.shard_of('{run.run_id}')"))


@pytest.fixture
def paused() -> Any:
    flows.PAUSE["seconds"] = 0.03  # so that the load lasts a few seconds
    yield
    flows.PAUSE["seconds"] = 0.0


def test_a_killed_shard_stalls_only_its_runs_and_every_run_finishes_once(
    clusters: ShardedClusters, caplog: pytest.LogCaptureFixture, paused: Any
) -> None:
    caplog.set_level("INFO", logger="pgflow.worker")
    proxy, shards = clusters.fresh()
    for url in shards:
        install_audit(url)
    deploy_to_shards(shards, list(FLOWS), dev=True)
    expected: dict[uuid.UUID, Any] = {}
    where: dict[uuid.UUID, int] = {}
    worker = Worker(
        list(FLOWS), shards=shards, concurrency=3, poll_interval=0.2,
        retry_base_delay=0.02, heartbeat_interval=1.0, shutdown_grace=3.0,
    )  # fmt: skip
    serving = threading.Thread(target=worker.run, name="sharded worker")
    with Client(proxy) as client:
        serving.start()
        try:
            for n in range(48):
                start(client, proxy, n, expected, where)
            wait_until("shard 1 made progress", lambda: count(shards[1], DONE_TASKS) >= 10)
            live_on_one = count(shards[1], LIVE)
            assert live_on_one > 0, "shard 1 finished before the kill: make the load longer"
            clusters.shards[1].kill()
            during = len(expected)
            # Started while shard 1 is down, with no id: the proxy picks ids on shards 0
            # and 2. (A new client: its proxy sessions have no connection to shard 1 that
            # broke under a call, whose outcome would be unknown; see docs/sharding.md.)
            with Client(proxy) as fresh:
                for n in range(100, 112):
                    start(fresh, proxy, n, expected, where)
            assert all(where[rid] != 1 for rid in list(expected)[during:])
            for index in (0, 2):
                wait_until(f"shard {index} done", lambda i=index: count(shards[i], LIVE) == 0)
            stalled = next(rid for rid, shard in where.items() if shard == 1)
            with pytest.raises(DatabaseError, match="shard 1 of 3") as down:
                client.get_run(stalled)
            assert down.value.sqlstate == "PGF20"
            assert "shard 1: database unavailable" in caplog.text
            clusters.shards[1].start()  # crash recovery, same port
            wait_until("shard 1 done", lambda: count(shards[1], LIVE) == 0)
            assert client.wait(stalled, timeout=DEADLINE).status == "completed"
            back = "shard 1: database available again"  # once its LISTEN is back too
            wait_until("shard 1 logged its return", lambda: back in caplog.text)
        finally:
            worker.stop()
            serving.join(30)
    assert not serving.is_alive()
    for index, url in enumerate(shards):
        mine = {rid: out for rid, out in expected.items() if where[rid] == index}
        figures = check_invariants(url, mine, Figures())
        assert figures.runs == len(mine) > 0 and figures.lost == figures.duplicates == 0
