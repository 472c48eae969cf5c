"""Large values by reference through real workers and clients (docs/large-values.md).

Values of 100-200 KiB (over the default inline limit of 64 KiB) keep these fast; the
20 x 16 MiB fan-in is in test_large_fan_in.py.
"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from pgflow import AsyncClient, Client, Context, Flow
from pgflow.blobs import FilesystemStore
from pgflow.db.connection import open_async_pool
from pgflow.errors import InvalidInputError, ValueMissingError, ValueStoreError
from pgflow.worker.store import WorkerStore
from pgflow.worker.tombstones import TombstoneSweeper
from tests.integration.runtime import Deploy, WorkerPool, tasks_of

KIB = 1024
LARGE = 200 * KIB

chain = Flow("large_chain", max_attempts=1)


@chain.step()
def produce(input: dict[str, Any]) -> str:
    return "p" * LARGE


@chain.step(depends_on=[produce])
async def consume(produce: str, input: dict[str, Any]) -> dict[str, Any]:
    return {"got": len(produce), "input": len(input["blob"]), "echo": input.get("echo")}


grow_map = Flow("large_map", input=list[int])


@grow_map.map()
def grow(n: int) -> str:
    return str(n) * LARGE


@grow_map.step(depends_on=[grow])
def lengths(grow: list[str]) -> list[int]:
    return [len(g) for g in grow]


peek = Flow("root_map_peek", input=list[str])


@peek.map()
def sync_peek(item: str, ctx: Context) -> int:
    return len(ctx.flow_input)  # blocking fetch, in the handler's thread


@peek.map()
async def async_peek(item: str, ctx: Context) -> int:
    return len(await ctx.load_flow_input())


@peek.map()
def bound_peek(item: str, input: list[str]) -> int:
    return sum(len(s) for s in input)


split = Flow("split_large_array")


@split.array()
def numbers(input: dict[str, Any]) -> list[str]:
    return [f"{i:040d}" for i in range(2000)]  # 86 KiB of JSON: stored by reference


@split.map(array=numbers)
def halve(n: str) -> int:
    return int(n) // 2


healthy = Flow("healthy_neighbour")


@healthy.step()
def fine(input: dict[str, Any]) -> str:
    return "ok"


def rows(url: str, sql: str, *params: Any) -> list[dict[str, Any]]:
    with psycopg.connect(url, row_factory=dict_row) as conn:
        return conn.execute(sql, params).fetchall()


def is_ref(value: Any) -> bool:
    return isinstance(value, dict) and "$pgflow_ref" in value


async def test_large_inputs_and_outputs_travel_by_reference(
    deploy: Deploy, workers: WorkerPool, aclient: AsyncClient, db_url: str
) -> None:
    deploy(chain)
    workers.start(chain)
    value = {"blob": "b" * (100 * KIB), "echo": {"nested": {"$pgflow_ref": "not mine"}}}
    run = await aclient.start(chain, value)
    assert is_ref(run.input)  # stored when the run started
    done = await aclient.wait(run.run_id, timeout=20)
    assert done.output == {"consume": {"got": LARGE, "input": 100 * KIB, "echo": value["echo"]}}
    assert is_ref(done.step("produce").output)  # readers get the reference
    assert await aclient.output(done, "produce") == "p" * LARGE
    assert await aclient.input(done) == value
    assert await aclient.output(done.run_id) == done.output
    stored = rows(db_url, "select store, size from pgflow.blobs where run_id = %s", run.run_id)
    assert sorted(r["size"] for r in stored) == sorted([LARGE + 2, run.input["size"]])
    assert {r["store"] for r in stored} == {"pg"}
    with Client(db_url) as client:  # the sync twin
        assert client.output(done.run_id, "produce") == "p" * LARGE
        assert client.input(done) == value


async def test_a_map_aggregates_references_and_its_dependent_gets_plain_values(
    deploy: Deploy, workers: WorkerPool, aclient: AsyncClient
) -> None:
    deploy(grow_map)
    workers.start(grow_map, concurrency=3)
    done = await aclient.wait((await aclient.start(grow_map, [1, 2, 3])).run_id, timeout=20)
    assert done.output == {"lengths": [LARGE, LARGE, LARGE]}
    assert all(is_ref(v) for v in done.step("grow").output)
    assert await aclient.output(done, "grow") == [str(n) * LARGE for n in (1, 2, 3)]


async def test_map_tasks_fetch_the_run_input_only_when_the_handler_asks(
    deploy: Deploy, workers: WorkerPool, aclient: AsyncClient
) -> None:
    deploy(peek)
    workers.start(peek, concurrency=4)
    items = [c * (30 * KIB) for c in "abcd"]  # 120 KiB: the run input is stored
    run = await aclient.start(peek, items)
    assert is_ref(run.input)
    done = await aclient.wait(run.run_id, timeout=20)
    assert done.output == {
        "sync_peek": [4] * 4,
        "async_peek": [4] * 4,
        "bound_peek": [120 * KIB] * 4,
    }


async def test_a_missing_value_fails_its_task_with_what_to_do_and_nothing_else(
    deploy: Deploy, workers: WorkerPool, aclient: AsyncClient, db_url: str
) -> None:
    deploy(chain, healthy)
    pool_worker = workers.start(chain, steps=["produce"])
    doomed = await aclient.start(chain, {"blob": "x"})
    gone = await aclient.start(chain, {"blob": "y"})
    for run_id in (doomed.run_id, gone.run_id):
        await until(db_url, run_id, "produce", "completed")
    await workers.stop(pool_worker)
    with psycopg.connect(db_url, autocommit=True) as conn:  # out of band
        conn.execute("delete from pgflow.blob_chunks where run_id = %s", [doomed.run_id])
        conn.execute("delete from pgflow.blobs where run_id = %s", [gone.run_id])
    workers.start(chain, healthy)
    neighbour = await aclient.start(healthy, {})
    for run_id in (doomed.run_id, gone.run_id):
        await until(db_url, run_id, "consume", "failed")
        task = {t["step_slug"]: t for t in tasks_of_url(db_url, run_id)}["consume"]
        assert task["error_type"] == "pgflow.ValueMissingError"
        assert (
            f"the input of step 'consume' of flow 'large_chain' (run {run_id})"
            in (task["error_message"])
        )
        assert "Hint:" in task["error_message"]
    assert (await aclient.wait(neighbour.run_id, timeout=10)).output == {"fine": "ok"}


async def test_an_output_over_the_hard_cap_fails_before_anything_is_stored(
    deploy: Deploy, workers: WorkerPool, aclient: AsyncClient, db_url: str
) -> None:
    deploy(chain)
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("select pgflow.set_setting('max_payload_bytes', 150000)")
    workers.start(chain)
    run = await aclient.start(chain, {"blob": "x"})
    await until(db_url, run.run_id, "produce", "failed")
    (task,) = [t for t in tasks_of_url(db_url, run.run_id) if t["step_slug"] == "produce"]
    assert task["error_type"] == "OutputTooLarge"
    assert f"step 'produce' of flow 'large_chain' (run {run.run_id})" in task["error_message"]
    assert "over the limit of 150000 bytes (setting max_payload_bytes)" in task["error_message"]
    assert "set_setting('max_payload_bytes'" in task["error_message"]
    assert rows(db_url, "select * from pgflow.blobs where run_id = %s", run.run_id) == []
    # a run input over it is refused before anything is written
    with (
        Client(db_url) as client,
        pytest.raises(InvalidInputError, match="over the limit of 150000 bytes"),
    ):
        client.start(chain, {"blob": "z" * 200_000})
    assert len(rows(db_url, "select * from pgflow.runs")) == 1


async def test_a_filesystem_store_holds_outputs_and_its_files_go_with_their_runs(
    deploy: Deploy, workers: WorkerPool, db_url: str, tmp_path: Path
) -> None:
    deploy(chain, grow_map, split)
    store = FilesystemStore(tmp_path / "values")
    workers.start(chain, grow_map, split, blob_store=store, concurrency=20)
    async with AsyncClient(db_url, blob_store=store) as client:
        done = await client.wait((await client.start(chain, {"blob": "q"})).run_id, timeout=20)
        assert done.output["consume"]["got"] == LARGE
        ref = done.step("produce").output
        assert ref["store"] == "fs"
        path = tmp_path / "values" / str(done.run_id) / ref["$pgflow_ref"]
        assert path.stat().st_size == ref["size"]
        assert await client.output(done, "produce") == "p" * LARGE
        mapped = await client.wait((await client.start(grow_map, [7])).run_id, timeout=20)
        assert mapped.output == {"lengths": [LARGE]}  # map outputs in the store, read back
        halves = await client.wait((await client.start(split, {})).run_id, timeout=20)
        assert halves.output == {"halve": [i // 2 for i in range(2000)]}
    by_run = rows(db_url, "select run_id, store from pgflow.blobs")
    assert {r["store"] for r in by_run if r["run_id"] == mapped.run_id} == {"fs"}
    # the array a map splits is read by SQL: it stays in Postgres whatever the store
    assert {r["store"] for r in by_run if r["run_id"] == halves.run_id} == {"pg"}
    with Client(db_url) as plain, pytest.raises(ValueStoreError, match="which this process was"):
        plain.output(done, "produce")
    original = path.read_bytes()
    path.write_bytes(original.replace(b"p", b"q", 1))  # changed outside pgflow: same size
    changed = pytest.raises(ValueMissingError, match="does not match its reference")
    with Client(db_url, blob_store=store) as reader, changed:
        reader.output(done, "produce")
    path.write_bytes(original)
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("select pgflow.delete_flow_and_data('large_chain')")
    assert path.exists()  # Postgres cannot delete files: a worker does
    pool = await open_async_pool(db_url, min_size=1, max_size=2)
    try:
        sweeper = TombstoneSweeper(WorkerStore(pool, uuid.uuid4(), ["large_chain"]), store, 60)
        assert await sweeper.one_pass() == 1
    finally:
        await pool.close()
    assert not path.exists() and not path.parent.exists()
    assert rows(db_url, "select * from pgflow.blob_tombstones") == []


async def test_a_store_that_fails_fails_the_attempt_and_the_worker_serves_others(
    deploy: Deploy, workers: WorkerPool, aclient: AsyncClient, db_url: str, tmp_path: Path
) -> None:
    blocked = tmp_path / "not-a-directory"
    blocked.write_text("a file where the store's directory should be")
    deploy(chain, healthy)
    workers.start(chain, healthy, blob_store=FilesystemStore(blocked))
    run = await aclient.start(chain, {"blob": "x"})
    neighbour = await aclient.start(healthy, {})
    await until(db_url, run.run_id, "produce", "failed")
    (task,) = [t for t in tasks_of_url(db_url, run.run_id) if t["step_slug"] == "produce"]
    assert task["error_type"] == "pgflow.ValueStoreError"
    message = task["error_message"]
    assert f"the output of step 'produce' of flow 'large_chain' (run {run.run_id})" in message
    assert "store 'fs'" in message and "check that the store is reachable" in message
    assert (await aclient.wait(neighbour.run_id, timeout=10)).output == {"fine": "ok"}


forger = Flow("forger", max_attempts=1)
STOLEN: dict[str, Any] = {}


@forger.step()
def steal(input: dict[str, Any]) -> Any:
    return STOLEN["ref"]  # another run's reference, returned as this step's output


@forger.step(depends_on=[steal])
def use(steal: Any) -> Any:
    return steal


async def test_a_forged_reference_never_reads_another_runs_value(
    deploy: Deploy, workers: WorkerPool, aclient: AsyncClient, db_url: str
) -> None:
    deploy(chain, forger)
    workers.start(chain, forger)
    victim = await aclient.wait((await aclient.start(chain, {"blob": "v"})).run_id, timeout=20)
    STOLEN["ref"] = victim.step("produce").output
    attack = await aclient.start(forger, {})
    await until(db_url, attack.run_id, "steal", "failed")
    (task,) = [t for t in tasks_of_url(db_url, attack.run_id) if t["step_slug"] == "steal"]
    assert task["error_type"] == "InvalidReference"
    assert f"names no stored value of run {attack.run_id}" in task["error_message"]
    states = rows(db_url, "select status from pgflow.step_states where run_id = %s "
                          "and step_slug = 'use'", attack.run_id)  # fmt: skip
    assert states == [{"status": "cancelled"}]  # never ran: nothing was read


async def until(url: str, run_id: Any, step: str, status: str, timeout: float = 20) -> None:
    """Wait until a step of a run reaches ``status`` (polls: the test has no LISTEN)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        got = rows(url, "select status from pgflow.step_states where run_id = %s "
                        "and step_slug = %s", run_id, step)  # fmt: skip
        if got and got[0]["status"] == status:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"step {step} of run {run_id} never reached {status}")


def tasks_of_url(url: str, run_id: Any) -> list[dict[str, Any]]:
    with psycopg.connect(url, row_factory=dict_row) as conn:
        return tasks_of(conn, run_id)
