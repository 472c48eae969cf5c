"""Values stored by reference work for pgflow's two roles with no grant beyond theirs."""

from __future__ import annotations

import asyncio
from typing import Any

import psycopg
import pytest

from pgflow import Client, Context, Flow, PgflowError, Worker
from pgflow.deploy import deploy_flows
from tests.integration.security.conftest import Login

KIB = 1024
big = Flow("roles_big_values", input=list[str], max_attempts=1)


@big.map()
def echo(item: str, ctx: Context) -> str:
    return item * 3 + str(len(ctx.flow_input))  # 90 KiB out; the run input fetched on demand


@big.step(depends_on=[echo])
def total(echo: list[str]) -> int:
    return sum(len(e) for e in echo)


def test_a_worker_and_a_reader_with_only_their_roles_store_and_read_values(
    db_url: str, login: Login
) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        deploy_flows(conn, [big], dev=True)
    items = [c * (30 * KIB) for c in "ab"]  # the run input (60 KiB + quotes) is inline
    worker = Worker([big], login("pgflow_worker"), poll_interval=0.2, retry_base_delay=0)

    async def run_one() -> Any:
        serving = asyncio.create_task(worker.run_async())
        try:
            with Client(db_url) as client:  # the application starts runs with its own role
                run = await asyncio.to_thread(client.start, big, items)
                return await asyncio.to_thread(client.wait, run.run_id, 60)
        finally:
            worker.stop()
            await asyncio.wait_for(serving, 30)

    done = asyncio.run(run_one())
    assert done.output == {"total": 2 * (90 * KIB + 1)}
    assert all("$pgflow_ref" in value for value in done.step("echo").output)
    with Client(login("pgflow_reader")) as reader:
        assert reader.output(done.run_id, "echo") == [i * 3 + "2" for i in items]
        with pytest.raises(PgflowError, match="permission denied"):
            reader.start(big, items)  # reading is all a reader does
