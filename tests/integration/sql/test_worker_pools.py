"""claim_tasks(step_slugs => ...): worker pools claim only their steps, fairly."""

from __future__ import annotations

import uuid
from typing import Any

import psycopg

from tests.integration.sql.helpers import complete, define, q, start, tasks


def claim_steps(
    conn: psycopg.Connection[Any], flows: list[str], steps: list[str] | None, n: int = 10
) -> list[dict[str, Any]]:
    return q(
        conn,
        "select * from pgflow.claim_tasks(%s, %s, %s, step_slugs => %s)",
        flows,
        uuid.uuid4(),
        n,
        steps,
    )


def claim_blocks(conn: psycopg.Connection[Any], steps: list[str] | None) -> int:
    """Shared buffers one claim of one task touches (rolled back: nothing is claimed)."""
    with conn.transaction(force_rollback=True):
        [row] = q(
            conn,
            "explain (analyze, buffers, format json) select * from pgflow.claim_tasks("
            "'{busy}', gen_random_uuid(), 1, step_slugs => %s)",
            steps,
        )
    return int(row["QUERY PLAN"][0]["Plan"]["Shared Hit Blocks"])


def test_a_pool_claims_only_its_steps_and_leaves_the_others_queued(conn):
    define(conn, "pooled", ("a", []), ("b", []), ("c", ["a"]))
    runs = [start(conn, "pooled")["run_id"] for _ in range(3)]
    got = claim_steps(conn, ["pooled"], ["b"], 10)
    assert sorted((t["run_id"], t["step_slug"]) for t in got) == sorted((r, "b") for r in runs)
    assert claim_steps(conn, ["pooled"], ["b", "c"], 10) == []  # c waits for a
    for task in claim_steps(conn, ["pooled"], ["a"], 10):
        complete(conn, task, 1)
    assert {t["step_slug"] for t in claim_steps(conn, ["pooled"], ["c", "nope"], 10)} == {"c"}
    for run_id in runs:
        by_step = {t["step_slug"]: t["status"] for t in tasks(conn, run_id)}
        assert by_step == {"a": "completed", "b": "started", "c": "started"}


def test_null_or_no_steps(conn):
    define(conn, "pooled", ("a", []), ("b", []))
    start(conn, "pooled")
    assert claim_steps(conn, ["pooled"], [], 10) == []  # an empty pool serves nothing
    assert {t["step_slug"] for t in claim_steps(conn, ["pooled"], None, 10)} == {"a", "b"}


def test_a_pool_claim_is_fair_across_runs_and_flows(conn):
    define(conn, "big", ("m", [], {"step_type": "map"}), ("x", []))
    define(conn, "small", ("m", [], {"step_type": "map"}), ("x", []))
    start(conn, "big", list(range(50)))
    late = start(conn, "big", [1])["run_id"]
    got = claim_steps(conn, ["big"], ["m"], 2)
    assert {t["run_id"] for t in got} >= {late}  # a newcomer is served within one claim
    start(conn, "small", [1])
    got = claim_steps(conn, ["big", "small"], ["m"], 2)
    assert sorted(t["flow_slug"] for t in got) == ["big", "small"]


def test_a_rare_step_is_found_without_walking_the_backlog(conn):
    define(conn, "busy", ("bulk", [], {"step_type": "map"}), ("gate", []), ("rare", ["gate"]))
    start(conn, "busy", list(range(20000)))
    [gate] = claim_steps(conn, ["busy"], ["gate"], 5)
    # an idle pool polling for a step with nothing ready costs about what the head of the
    # flow's queue does: a few index pages, not the 20 000 queued tasks of the other step
    blocks = {s and tuple(s): claim_blocks(conn, s) for s in (None, ["rare"])}
    assert blocks[("rare",)] < 2 * blocks[None] + 20, blocks
    complete(conn, gate, 1)
    [task] = claim_steps(conn, ["busy"], ["rare", "gate"], 5)
    assert task["step_slug"] == "rare"
