"""The PL/Proxy set-up end to end: install, deploy, runs through the proxy, refusals.

Three shard servers and a proxy server (:mod:`tests.sharding_clusters`); this module's
databases on them are installed once (``proxy``/``shards`` fixtures). What is checked:

* a run lives on exactly the shard its id maps to, and every public function the client
  and the CLI use (start, get_run, wait, runs, cancel, retry, status) works through the
  proxy as on one database, errors included;
* compiled flow SQL applied to the proxy reaches every shard (RUN ON ALL mirrors), and
  the proxy's functions keep the shards' parameter lists;
* a shard that is down: calls for its runs fail with PGF20 naming it, new runs start on
  the other shards, listing and deploying refuse with its name; the CLI says so too;
* refusals: shards at different schema versions (worker, deploy, ``pgflow shards``),
  a worker given the proxy's URL, a changed number of shards, a proxy among its shards.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from click.testing import CliRunner

from pgflow import Client, Flow, Worker
from pgflow.cli import main
from pgflow.compiler import compile_flow
from pgflow.errors import (
    ConfigurationError,
    DatabaseError,
    InvalidInputError,
    RunFailedError,
    SchemaError,
    UnknownFlowError,
    UnknownRunError,
)
from pgflow.sharding import deploy_to_shards, install_proxy
from tests.faults.audit import install_audit
from tests.integration.sharding.flows import FLOWS, chain, doomed, fanout
from tests.sharding_clusters import ShardedClusters

FAST: dict[str, Any] = {"poll_interval": 0.2, "retry_base_delay": 0.0, "shutdown_grace": 2.0}


@pytest.fixture(scope="module")
def urls(clusters: ShardedClusters) -> tuple[str, list[str]]:
    proxy, shards = clusters.fresh()
    for url in shards:
        install_audit(url)
    result = CliRunner().invoke(
        main, ["deploy", "tests/integration/sharding/flows.py", "--database-url", proxy]
    )
    assert result.exit_code == 0, result.output
    return proxy, shards


@pytest.fixture
def proxy(urls: tuple[str, list[str]]) -> str:
    return urls[0]


@pytest.fixture
def shards(urls: tuple[str, list[str]]) -> list[str]:
    return urls[1]


def scalar(url: str, statement: str, *params: Any) -> Any:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(statement.encode(), params or None).fetchone()
    return None if row is None else row[0]


def shard_of(proxy: str, run_id: uuid.UUID) -> int:
    return int(scalar(proxy, "select pgflow_proxy.shard_of(%s)", run_id))


def holders(shards: list[str], run_id: uuid.UUID) -> list[int]:
    """The shards that have a run of that id."""
    sql = "select count(*) from pgflow.runs where run_id = %s"
    return [i for i, url in enumerate(shards) if scalar(url, sql, run_id)]


def work(shards: list[str]) -> None:
    Worker(list(FLOWS), shards=shards, **FAST).run(until_idle=True)


@pytest.fixture
def stopped(clusters: ShardedClusters) -> Iterator[Any]:
    """Stop a shard server for the test; start it again afterwards."""
    down: list[Any] = []

    def stop(index: int) -> None:
        clusters.shards[index].stop()
        down.append(clusters.shards[index])

    yield stop
    for cluster in down:
        if not (cluster.pgdata / "postmaster.pid").exists():
            cluster.start()


def test_runs_live_on_the_shard_their_id_maps_to_and_work_through_the_proxy(
    proxy: str, shards: list[str]
) -> None:
    with Client(proxy) as client:
        # three with ids chosen on shards 0, 1, 2 (twelve random ones missed a shard one
        # time in 70); the rest with ids the proxy picks
        started = [
            client.start(chain, {"n": n}, run_id=_id_on(proxy, n) if n < 3 else None)
            for n in range(12)
        ]
        started.append(client.start("shard_map", [1, 2, 3]))  # by slug: schema read too
        for run in started:
            assert holders(shards, run.run_id) == [shard_of(proxy, run.run_id)]
        assert len({shard_of(proxy, r.run_id) for r in started}) == 3
        work(shards)
        done = [client.wait(r.run_id, timeout=30) for r in started]
        assert [d.output["third"]["v"] for d in done[:12]] == [(n + 1) * 2 + 3 for n in range(12)]
        assert done[12].output["total"]["v"] == 14
        listed = client.runs(limit=200)
        assert {r.run_id for r in started} <= {r.run_id for r in listed}
        assert [r.started_at for r in listed] == sorted(
            (r.started_at for r in listed), reverse=True
        )
        assert len(client.runs(flow_slug="shard_map", limit=200)) >= 1
        assert len(client.runs(limit=5)) == 5


def test_an_idempotent_start_cancel_and_retry_reach_the_runs_shard(
    proxy: str, shards: list[str]
) -> None:
    rid = uuid.uuid4()
    with Client(proxy) as client:
        first = client.start(chain, {"n": 1}, run_id=rid)
        again = client.start(chain, {"n": 1}, run_id=rid)
        assert first.run_id == again.run_id == rid and holders(shards, rid) == [
            shard_of(proxy, rid)
        ]
        assert client.cancel(rid).status == "cancelled"
        assert client.get_run(rid).status == "cancelled"
        assert client.retry(rid).status == "started"
        work(shards)
        assert client.wait(rid, timeout=30).output["third"]["v"] == 7


def test_errors_through_the_proxy_are_those_of_one_database(proxy: str) -> None:
    with Client(proxy) as client:
        with pytest.raises(UnknownRunError) as unknown_run:
            client.get_run(uuid.uuid4())
        assert unknown_run.value.message.startswith("unknown run ")
        assert "REMOTE" not in unknown_run.value.message
        assert unknown_run.value.hint and "pgflow runs" in unknown_run.value.hint
        with pytest.raises(UnknownFlowError, match="unknown flow 'nope'"):
            client.start("nope", {})
        with pytest.raises(InvalidInputError):
            client.start(chain, {"n": 1}, priority=500)
        with pytest.raises(UnknownRunError):
            client.cancel(uuid.uuid4())


sql_only = Flow("shard_sql_only", max_attempts=2)


@sql_only.step()
def only(input: dict[str, int]) -> int:
    return 1


def test_compiled_sql_applied_to_the_proxy_defines_the_flow_on_every_shard(
    proxy: str, shards: list[str]
) -> None:
    sql = compile_flow(sql_only).sql
    with psycopg.connect(proxy, autocommit=True) as conn:
        conn.execute(sql.encode())
        conn.execute(sql.encode())  # again: a no-op on every shard
    found = "select status from pgflow.flows where flow_slug = 'shard_sql_only'"
    assert [scalar(url, found) for url in shards] == ["ready"] * 3


SIGNATURES = """
select p.proname, pg_get_function_arguments(p.oid)
from pg_proc p where p.pronamespace = 'pgflow'::regnamespace and p.proname = any(%s)
order by 1, 2
"""
ROUTED = [
    "start_flow", "get_run_with_states", "cancel_run", "retry_run", "flow_input_schema",
    "get_flow_shape", "flow_checksum", "register_worker", "create_flow", "add_step",
    "set_schedules", "set_limits", "pause_schedules", "delete_flow_and_data", "prune",
]  # fmt: skip


def test_the_proxys_functions_take_the_shards_parameters(proxy: str, shards: list[str]) -> None:
    """If this fails, a shard function's parameters changed: update pgflow/sql/proxy/ (the
    hand-written routes) or run `pgflow install --proxy` again (the mirrors)."""
    with psycopg.connect(proxy) as p, psycopg.connect(shards[0]) as s:
        on_proxy = p.execute(SIGNATURES, [ROUTED]).fetchall()
        on_shard = s.execute(SIGNATURES, [ROUTED]).fetchall()
    assert on_proxy == on_shard


def test_a_shard_that_is_down_is_named_and_stalls_only_its_runs(
    proxy: str, shards: list[str], clusters: ShardedClusters, stopped: Any, caplog: Any
) -> None:
    with Client(proxy) as client:
        # ids chosen per shard: nine random ones missed shard 2 one time in 40 (2/3 ** 9)
        on_two = client.start(chain, {"n": 0}, run_id=_id_on(proxy, 2)).run_id
        elsewhere = client.start(chain, {"n": 1}, run_id=_id_on(proxy, 0)).run_id
        stopped(2)
        port = str(clusters.shards[2].port)
        with pytest.raises(DatabaseError) as down:
            client.get_run(on_two)
        assert down.value.sqlstate == "PGF20"
        assert "shard 2 of 3" in down.value.message and port in down.value.message
        assert down.value.hint and "pgflow shards" in down.value.hint
        assert client.get_run(elsewhere).status == "started"
        with Client(proxy) as fresh:  # proxy sessions that never had a connection to shard 2
            moved = [fresh.start(chain, {"n": 100 + n}) for n in range(6)]  # no id given
        assert all(shard_of(proxy, r.run_id) != 2 for r in moved)
        with pytest.raises(DatabaseError, match="shard 2 of 3"):
            client.start(chain, {"n": 1}, run_id=_id_on(proxy, 2))
        with pytest.raises(DatabaseError, match="shard 2 of 3"):
            client.runs()
    with pytest.raises(DatabaseError, match="shard 2 of 3") as refused:
        deploy_to_shards(shards, [fanout], dev=True)
    assert "could not connect" in refused.value.message
    with pytest.raises(DatabaseError, match="shard 2 of 3"):
        install_proxy(proxy, shards)
    result = CliRunner().invoke(main, ["shards", "--database-url", proxy])
    assert result.exit_code == 1 and "shard(s) 2" in result.output
    started_late(proxy, shards, clusters, caplog, [on_two, elsewhere, *(r.run_id for r in moved)])


def started_late(
    proxy: str, shards: list[str], clusters: ShardedClusters, caplog: Any, run_ids: list[Any]
) -> None:
    """A worker started while shard 2 is down serves the others at once, retries shard 2
    with backoff, and serves it once it is back."""
    caplog.set_level("INFO", logger="pgflow.worker")
    worker = Worker(list(FLOWS), shards=shards, **FAST)
    serving = threading.Thread(target=worker.run, name="sharded worker")
    serving.start()
    try:
        with Client(proxy) as client:
            for rid in run_ids[1:]:  # not on shard 2
                assert client.wait(rid, timeout=20).status == "completed"
            assert "shard 2: unavailable" in caplog.text
            clusters.shards[2].start()
            assert client.wait(run_ids[0], timeout=30).status == "completed"
        assert "shard 2: reachable again; serving it" in caplog.text
    finally:
        worker.stop()
        serving.join(20)


def _id_on(proxy: str, shard: int) -> uuid.UUID:
    while True:
        rid = uuid.uuid4()
        if shard_of(proxy, rid) == shard:
            return rid


@pytest.fixture
def older_shard(shards: list[str]) -> Iterator[str]:
    """Shard 1 made to look one migration behind (its last migration row removed)."""
    row = scalar(shards[1], "select max(id) from pgflow.schema_migrations")
    with psycopg.connect(shards[1], autocommit=True) as conn:
        saved = conn.execute(
            "select * from pgflow.schema_migrations where id = %s", [row]
        ).fetchone()
        conn.execute("delete from pgflow.schema_migrations where id = %s", [row])
    yield shards[1]
    with psycopg.connect(shards[1], autocommit=True) as conn:
        conn.execute("insert into pgflow.schema_migrations values (%s, %s, %s, %s)", saved)


def test_a_shard_at_another_schema_version_is_refused(
    proxy: str, shards: list[str], older_shard: str
) -> None:
    with pytest.raises(SchemaError, match="shard 1 of 3") as worker:
        Worker(list(FLOWS), shards=shards, **FAST).run(until_idle=True)
    assert worker.value.hint and "pgflow install" in worker.value.hint
    with pytest.raises(SchemaError, match="shard 1 of 3"):
        deploy_to_shards(shards, [chain], dev=True)
    result = CliRunner().invoke(main, ["shards", "--database-url", proxy])
    assert result.exit_code == 1 and "versions differ" in result.output


def test_a_worker_given_the_proxys_url_is_told_to_serve_the_shards(proxy: str) -> None:
    with pytest.raises(ConfigurationError, match="pgflow proxy database") as refused:
        Worker(list(FLOWS), proxy, **FAST).run(until_idle=True)
    assert refused.value.hint and "--shard" in refused.value.hint


def test_worker_shard_options_are_checked(shards: list[str]) -> None:
    with pytest.raises(ConfigurationError, match="either shards or database_url"):
        Worker(list(FLOWS), shards[0], shards=shards)
    with pytest.raises(ConfigurationError, match="got the string"):
        Worker(list(FLOWS), shards=shards[0])
    with pytest.raises(ConfigurationError, match="same database as shard 0"):
        Worker(list(FLOWS), shards=[shards[0], shards[0]])


def test_install_refuses_what_would_break_the_routing(
    proxy: str, shards: list[str], clusters: ShardedClusters
) -> None:
    with pytest.raises(ConfigurationError, match="routes runs to 3 shard") as count:
        install_proxy(proxy, shards[:2])
    assert count.value.hint and "same order" in count.value.hint
    with pytest.raises(ConfigurationError, match="also listed as a shard"):
        install_proxy(shards[0], shards)
    with pytest.raises(ConfigurationError, match="has the pgflow schema"):
        install_proxy(shards[0], [clusters.proxy.url("postgres")])
    again = CliRunner().invoke(main, ["install", "--database-url", proxy])  # upgrade in place
    assert again.exit_code == 0, again.output
    assert "3 shard(s) on 4 PL/Proxy partition(s)" in again.output


def test_wait_follows_a_run_through_the_proxy_and_status_shows_its_failure(
    proxy: str, shards: list[str]
) -> None:
    """The proxy relays no notifications: the client polls it (a LISTEN there would wait
    for the timeout), and `pgflow status` reads the failed tasks from the run's shard."""
    worker = Worker(list(FLOWS), shards=shards, **FAST)
    serving = threading.Thread(target=worker.run, name="sharded worker")
    serving.start()
    try:
        with Client(proxy) as client:
            run = client.start(chain, {"n": 5})
            seen = [r.status for r in client.watch(run.run_id, timeout=20)]
            assert seen[0] == "started" and seen[-1] == "completed"
            failed = client.start(doomed, {"n": 7})
            with pytest.raises(RunFailedError, match="boom 7"):
                client.wait(failed.run_id, timeout=20)
    finally:
        worker.stop()
        serving.join(20)
    result = CliRunner().invoke(main, ["status", str(failed.run_id), "--database-url", proxy])
    assert "ValueError" in result.output and "boom 7" in result.output


def test_the_cli_installs_a_proxy_and_lists_its_shards(clusters: ShardedClusters) -> None:
    for cluster in (clusters.proxy, *clusters.shards):
        cluster.execute("create database cli")
    shard_args = [arg for c in clusters.shards for arg in ("--shard", c.url("cli"))]
    proxy = clusters.proxy.url("cli")
    installed = CliRunner().invoke(
        main, ["install", "--proxy", *shard_args, "--database-url", proxy]
    )
    assert installed.exit_code == 0, installed.output
    assert "shard 2 of 3 (postgresql://postgres@127.0.0.1:" in installed.output
    assert "3 shard(s) on 4 PL/Proxy partition(s)" in installed.output
    listed = CliRunner().invoke(main, ["shards", "--database-url", proxy])
    assert listed.exit_code == 0, listed.output
    assert listed.output.count("yes") == 3
    missing = CliRunner().invoke(
        main, ["install", "--proxy", "--database-url", shards_only(clusters)]
    )
    assert missing.exit_code == 1 and "not a pgflow proxy yet" in missing.output


def shards_only(clusters: ShardedClusters) -> str:
    clusters.proxy.execute("create database empty")
    return clusters.proxy.url("empty")


def test_pgflow_worker_given_the_proxy_serves_its_shards(proxy: str) -> None:
    """`pgflow worker FLOWS --database-url PROXY` reads the proxy's shards and serves each."""
    command = [sys.executable, "-c", "from pgflow.cli import main; main()", "worker"]
    args = [
        "tests/integration/sharding/flows.py",
        "--database-url",
        proxy,
        "--poll-interval",
        "0.2",
    ]
    env = {key: value for key, value in os.environ.items() if key != "PGFLOW_LISTEN_URL"}
    process = subprocess.Popen([*command, *args], env=env, stderr=subprocess.PIPE, text=True)
    try:
        with Client(proxy) as client:
            runs = [client.start(chain, {"n": n}) for n in range(6)]
            for run in runs:
                assert client.wait(run.run_id, timeout=30).status == "completed"
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
    assert process.returncode == 0, stderr
    for index in range(3):
        assert f"  shard {index}" in stderr and f"shard {index}: worker " in stderr
    assert "concurrency  10 per shard" in stderr
