"""A fan-in of 20 outputs of 16 MiB each, through a real worker, and every reader of it.

Each output is stored once and referenced; the dependent's input is built from 20
references (a few KiB, never a 320 MiB jsonb value); its handler receives plain strings.
``get_run_with_states``, ``Client.get_run``, ``pgflow status`` and the run viewer show the
references with their sizes. About 10 s on a busy 2-core machine.
"""

from __future__ import annotations

from collections.abc import Callable

import psycopg
from psycopg.rows import dict_row
from rich.console import Console
from starlette.testclient import TestClient

from pgflow import AsyncClient, Flow
from pgflow.cli._status import show_status
from pgflow.ui.app import create_app
from pgflow.ui.settings import UiSettings
from tests.integration.runtime import Deploy, WorkerPool

MIB = 1024 * 1024
PARTS = 20
SIZE = 16 * MIB  # each output's JSON text: exactly the default max_payload_bytes

fan_in = Flow("fan_in_16mib", max_attempts=1)


def _part(i: int) -> Callable[[], str]:
    def part() -> str:
        return chr(ord("a") + i) * (SIZE - 2)  # plus two quotes: SIZE bytes of JSON

    return part


for _i in range(PARTS):
    fan_in.step(f"part{_i:02d}", _part(_i))


@fan_in.step(depends_on=[f"part{i:02d}" for i in range(PARTS)])
def join(**parts: str) -> dict[str, int]:
    return {slug: len(text) for slug, text in parts.items() if text == text[0] * len(text)}


async def test_twenty_outputs_of_16_mib_fan_in_and_every_reader_shows_references(
    deploy: Deploy, workers: WorkerPool, aclient: AsyncClient, db_url: str
) -> None:
    deploy(fan_in)
    workers.start(fan_in, concurrency=4)
    run = await aclient.start(fan_in, {})
    done = await aclient.wait(run.run_id, timeout=120)
    assert done.output == {"join": {f"part{i:02d}": SIZE - 2 for i in range(PARTS)}}
    with psycopg.connect(db_url, row_factory=dict_row) as conn:
        join_task = conn.execute(
            "select input_bytes from pgflow.step_tasks where run_id = %s and step_slug = 'join'",
            [run.run_id],
        ).fetchone()
        doc = conn.execute(
            "select length(pgflow.get_run_with_states(%s)::text) as n", [run.run_id]
        ).fetchone()
        stored = conn.execute(
            "select count(*) as n, sum(size) as total from pgflow.blobs where run_id = %s",
            [run.run_id],
        ).fetchone()
    assert join_task is not None and join_task["input_bytes"] < 20_000  # 20 references
    assert doc is not None and doc["n"] < 50_000
    assert stored == {"n": PARTS, "total": PARTS * SIZE}
    parts = [s for s in done.steps if s.step_slug != "join"]
    assert all(s.output["size"] == SIZE and s.output["store"] == "pg" for s in parts)
    assert await aclient.output(done, "part07") == "h" * (SIZE - 2)

    console = Console(record=True, width=200)
    show_status(db_url, str(run.run_id), as_json=False, follow_run=False, full=False,
                out=console)  # fmt: skip
    assert console.export_text().count("<stored: 16.0 MiB>") == PARTS

    with TestClient(create_app(UiSettings(), db_url), base_url="http://127.0.0.1:8765") as ui:
        page = ui.get(f"/runs/{run.run_id}")
    assert page.status_code == 200 and len(page.content) < 500_000
    assert page.text.count("&lt;stored: 16.0 MiB&gt;") >= PARTS
