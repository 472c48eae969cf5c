"""Small SQL helpers for the SQL-core tests: every call goes to a real Postgres."""

from __future__ import annotations

import uuid
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb


def q(conn: psycopg.Connection[Any], sql: str, *params: Any) -> list[dict[str, Any]]:
    """Run one statement and return its rows as dicts."""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(sql, params or None)
        return cur.fetchall() if cur.description else []


def one(conn: psycopg.Connection[Any], sql: str, *params: Any) -> dict[str, Any]:
    rows = q(conn, sql, *params)
    assert len(rows) == 1, rows
    return rows[0]


def define(
    conn: psycopg.Connection[Any], flow: str, *steps: tuple[Any, ...], **flow_opts: Any
) -> None:
    """create_flow + add_step; each step is (slug, deps, {named options})."""
    opts = "".join(f", {k} => %s" for k in flow_opts)
    q(conn, f"select pgflow.create_flow(%s{opts})", flow, *flow_opts.values())
    for slug, deps, *rest in steps:
        named = rest[0] if rest else {}
        extra = "".join(f", {k} => %s" for k in named)
        values = [Jsonb(v) if isinstance(v, dict) else v for v in named.values()]
        q(
            conn,
            f"select pgflow.add_step(%s, %s, %s::text[]{extra})",
            flow,
            slug,
            list(deps),
            *values,
        )


def start(
    conn: psycopg.Connection[Any], flow: str, input: Any = None, run_id: Any = None
) -> dict[str, Any]:
    return one(
        conn,
        "select * from pgflow.start_flow(%s, %s, %s)",
        flow,
        Jsonb(input if input is not None else {}),
        run_id,
    )


def claim(
    conn: psycopg.Connection[Any],
    flow: str | list[str],
    n: int = 10,
    worker: uuid.UUID | None = None,
) -> list[dict[str, Any]]:
    flows = [flow] if isinstance(flow, str) else flow
    return q(conn, "select * from pgflow.claim_tasks(%s, %s, %s)", flows, worker or uuid.uuid4(), n)


def complete(
    conn: psycopg.Connection[Any], task: dict[str, Any], output: Any, attempt: int | None = None
) -> dict[str, Any]:
    return one(
        conn,
        "select * from pgflow.complete_task(%s, %s, %s, %s, %s)",
        task["run_id"],
        task["step_slug"],
        task["task_index"],
        Jsonb(output),
        task["attempt"] if attempt is None else attempt,
    )


def fail(
    conn: psycopg.Connection[Any],
    task: dict[str, Any],
    message: str = "boom",
    attempt: int | None = None,
) -> dict[str, Any]:
    return one(
        conn,
        "select * from pgflow.fail_task(%s, %s, %s, %s, %s, %s, %s)",
        task["run_id"],
        task["step_slug"],
        task["task_index"],
        message,
        task["attempt"] if attempt is None else attempt,
        "ValueError",
        "Traceback ...",
    )


def run(conn: psycopg.Connection[Any], run_id: Any) -> dict[str, Any]:
    return one(conn, "select * from pgflow.runs where run_id = %s", run_id)


def states(conn: psycopg.Connection[Any], run_id: Any) -> dict[str, dict[str, Any]]:
    rows = q(conn, "select * from pgflow.step_states where run_id = %s order by step_index", run_id)
    return {r["step_slug"]: r for r in rows}


def tasks(conn: psycopg.Connection[Any], run_id: Any) -> list[dict[str, Any]]:
    return q(
        conn,
        "select * from pgflow.step_tasks where run_id = %s order by step_slug, task_index",
        run_id,
    )


def drain(conn: psycopg.Connection[Any], flow: str, handler: Any) -> int:
    """Claim and complete until nothing is claimable; handler(task) -> output."""
    done = 0
    while batch := claim(conn, flow, 50):
        for task in batch:
            complete(conn, task, handler(task))
            done += 1
    return done
