"""Poison values: JSON that Postgres stores but Python's decoder refuses, and SQL helpers.

Postgres' ``jsonb`` takes a value 5,000 levels deep or an integer with 5,001 digits; Python's
``json`` module refuses both (``RecursionError``; ``ValueError`` from the int max-str-digits
limit). The helpers put such values where only SQL can: a run input (``start_flow``) and a
step output (``complete_task`` after a claim by a stand-in worker).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import psycopg

DEEP = "[" * 5000 + "]" * 5000
LONG_NUMBER = '{"n": ' + "7" * 5001 + "}"


def start_run(db_url: str, flow_slug: str, input_json: str) -> uuid.UUID:
    """Start a run from SQL with ``input_json`` (text) as its input; return its id."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        row = conn.execute(
            "select run_id from pgflow.start_flow(%s, %s::jsonb)", [flow_slug, input_json]
        ).fetchone()
    assert row is not None
    return uuid.UUID(str(row[0]))


def complete_root(db_url: str, flow_slug: str, step_slug: str, output_json: str) -> uuid.UUID:
    """Claim the queued ``step_slug`` task of ``flow_slug`` from SQL and complete it.

    The claim comes from a stand-in worker id, so no real worker runs the handler;
    ``output_json`` (text) becomes the step's output. Returns the task's run id.
    """
    with psycopg.connect(db_url, autocommit=True) as conn:
        claimed = conn.execute(
            "select run_id, step_slug, task_index, attempt"
            " from pgflow.claim_tasks(array[%s], %s, 1)",
            [flow_slug, uuid.uuid4()],
        ).fetchall()
        assert [row[1] for row in claimed] == [step_slug], claimed
        run_id, _, index, attempt = claimed[0]
        conn.execute(
            "select pgflow.complete_task(%s, %s, %s, %s::jsonb, %s)",
            [run_id, step_slug, index, output_json, attempt],
        )
    return uuid.UUID(str(run_id))


def run_status(db_url: str, run_id: uuid.UUID) -> str:
    """The run's status, read by SQL (no JSON decoding involved)."""
    with psycopg.connect(db_url) as conn:
        row = conn.execute("select status from pgflow.runs where run_id = %s", [run_id])
        found = row.fetchone()
    assert found is not None
    return str(found[0])


async def until_status(db_url: str, run_id: uuid.UUID, status: str, timeout: float = 15) -> None:
    """Wait until the run reaches ``status`` (polled by SQL)."""
    deadline = time.monotonic() + timeout
    while (current := run_status(db_url, run_id)) != status:
        assert time.monotonic() < deadline, f"run {run_id} is {current}, not {status}"
        await asyncio.sleep(0.05)


def task_rows(db_url: str, run_id: uuid.UUID) -> list[dict[str, Any]]:
    """Status, attempts and error of each task of a run, by step and index (no JSON)."""
    with psycopg.connect(db_url) as conn, conn.cursor() as cur:
        cur.execute(
            "select step_slug, task_index, status, attempts_count, error_type, error_message"
            " from pgflow.step_tasks where run_id = %s order by step_slug, task_index",
            [run_id],
        )
        names = [c.name for c in cur.description or ()]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
