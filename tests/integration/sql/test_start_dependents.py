"""Dependents started by the completion itself (_start_dependents) and the queue head that
complete_tasks probes once per batch: same states, tags and order as a step started by
_start_step."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from tests.integration.sql.helpers import claim, define, one, q, states, tasks


def start(conn: psycopg.Connection, flow: str, priority: int = 0) -> Any:
    return one(
        conn,
        "select run_id from pgflow.start_flow(%s, '{}'::jsonb, priority => %s)",
        flow,
        priority,
    )["run_id"]


def complete_batch(conn: psycopg.Connection, claimed: list[dict[str, Any]]) -> None:
    q(
        conn,
        "select * from pgflow.complete_tasks(%s::uuid[], %s::text[], %s::int[], %s::jsonb[],"
        " %s::int[])",
        [t["run_id"] for t in claimed],
        [t["step_slug"] for t in claimed],
        [t["task_index"] for t in claimed],
        [Jsonb({"from": t["step_slug"]}) for t in claimed],
        [t["attempt"] for t in claimed],
    )


def task_of(conn: psycopg.Connection, run_id: Any, step: str) -> dict[str, Any]:
    return next(t for t in tasks(conn, run_id) if t["step_slug"] == step)


def test_a_chain_step_started_by_the_completion_is_queued_like_any_other(conn):
    define(conn, "chain", ("a", []), ("b", ["a"]))
    run_id = start(conn, "chain")
    complete_batch(conn, claim(conn, "chain", 10))
    b = states(conn, run_id)["b"]
    assert (b["status"], b["remaining_deps"], b["initial_tasks"], b["remaining_tasks"]) == (
        "started", 0, 1, 1,
    )  # fmt: skip
    assert b["started_at"] is not None
    task = task_of(conn, run_id, "b")
    assert (task["status"], task["input"], task["input_bytes"]) == ("queued", None, None)
    assert task["priority_at"] is not None and task["available_at"] is not None
    [got] = claim(conn, "chain", 10)
    assert got["step_slug"] == "b" and got["input"] == {"a": {"from": "a"}}


def test_a_fan_in_still_waits_for_every_dependency_and_records_its_input_size(conn):
    define(conn, "diamond", ("root", []), ("l", ["root"]), ("r", ["root"]), ("join", ["l", "r"]))
    run_id = start(conn, "diamond")
    complete_batch(conn, claim(conn, "diamond", 10))
    assert {s: states(conn, run_id)[s]["status"] for s in ("l", "r", "join")} == {
        "l": "started", "r": "started", "join": "created",
    }  # fmt: skip
    branches = {t["step_slug"]: t for t in claim(conn, "diamond", 10)}
    complete_batch(conn, [branches["l"]])
    assert states(conn, run_id)["join"]["remaining_deps"] == 1
    assert [t["step_slug"] for t in tasks(conn, run_id)].count("join") == 0
    complete_batch(conn, [branches["r"]])
    join = task_of(conn, run_id, "join")
    assert join["status"] == "queued" and join["input_bytes"] > 0


def test_one_batch_tags_every_started_step_at_the_queue_head(conn):
    define(conn, "chain", ("a", []), ("b", ["a"]))
    first, second = start(conn, "chain"), start(conn, "chain")
    claimed = claim(conn, "chain", 2)
    waiting = start(conn, "chain")  # queued now: the head of the flow's queue
    head = task_of(conn, waiting, "a")["priority_at"]
    complete_batch(conn, claimed)
    assert task_of(conn, first, "b")["priority_at"] == head
    assert task_of(conn, second, "b")["priority_at"] == head
    # ties go to the older task: the waiting run's first step, then the two chains
    order = [(t["run_id"], t["step_slug"]) for t in claim(conn, "chain", 3)]
    assert order[0] == (waiting, "a")
    assert set(order[1:]) == {(first, "b"), (second, "b")}


def test_a_batch_never_gives_a_priority_run_the_default_band(conn):
    define(conn, "chain", ("a", []), ("b", ["a"]))
    backlog = [start(conn, "chain") for _ in range(3)]
    normal, urgent = start(conn, "chain"), start(conn, "chain", priority=5)
    claimed = [
        t for t in claim(conn, "chain", 10) if t["run_id"] in (normal, urgent)
    ]  # every a task: the backlog's go back to the queue below
    q(
        conn,
        "update pgflow.step_tasks set status = 'queued', leased_until = null"
        " where run_id = any(%s)",
        backlog,
    )
    complete_batch(conn, claimed)  # one batch: a default-priority run and an urgent one
    assert task_of(conn, urgent, "b")["priority_at"] < task_of(conn, normal, "b")["priority_at"]
    [first] = claim(conn, "chain", 1)
    assert (first["run_id"], first["step_slug"]) == (urgent, "b")
    rest = {t["run_id"] for t in claim(conn, "chain", 10)}
    assert rest == {normal, *backlog}


def test_a_batch_with_both_branches_of_a_diamond_starts_the_join_once(conn):
    # the join (two dependencies) is started by the batch's own statement, as the chain run
    # in the same batch is counted off and started
    define(conn, "diamond", ("root", []), ("l", ["root"]), ("r", ["root"]), ("join", ["l", "r"]))
    define(conn, "chain", ("a", []), ("b", ["a"]))
    diamond, chain = start(conn, "diamond"), start(conn, "chain")
    complete_batch(conn, claim(conn, ["diamond", "chain"], 10))  # root and a
    assert states(conn, chain)["b"]["status"] == "started"
    complete_batch(conn, claim(conn, ["diamond", "chain"], 10))  # l, r and b
    assert states(conn, chain)["b"]["status"] == "completed"
    assert one(conn, "select status from pgflow.runs where run_id = %s", chain)["status"] == (
        "completed"
    )
    join = task_of(conn, diamond, "join")
    assert join["status"] == "queued"
    assert [t["step_slug"] for t in tasks(conn, diamond)].count("join") == 1
    [got] = claim(conn, "diamond", 10)
    assert got["input"] == {"l": {"from": "l"}, "r": {"from": "r"}}
    complete_batch(conn, [got])
    run = one(conn, "select status, output from pgflow.runs where run_id = %s", diamond)
    assert run == {"status": "completed", "output": {"join": {"from": "join"}}}


def test_a_batch_completing_a_map_aggregates_it_and_starts_its_dependent(conn):
    define(conn, "m", ("each", [], {"step_type": "map"}), ("after", ["each"]))
    run_id = one(conn, "select run_id from pgflow.start_flow('m', '[1, 2, 3]'::jsonb)")["run_id"]
    complete_batch(conn, claim(conn, "m", 10))
    each = states(conn, run_id)["each"]
    assert (each["status"], each["remaining_tasks"]) == ("completed", 0)
    assert each["output"] == [{"from": "each"}] * 3
    [after] = claim(conn, "m", 10)
    assert after["step_slug"] == "after" and after["input"] == {"each": [{"from": "each"}] * 3}


def sizes(conn: psycopg.Connection, run_id: Any, *steps: str) -> int:
    """What the completed steps' outputs weigh together (what a fan-in's input is built of)."""
    return int(
        one(
            conn,
            "select sum(coalesce(output_bytes, pg_column_size(output)))::bigint as n"
            " from pgflow.step_states where run_id = %s and step_slug = any(%s)"
            " and status = 'completed'",
            run_id,
            list(steps),
        )["n"]
    )


def test_a_fan_in_started_by_a_completion_records_its_input_size_and_its_event(conn):
    define(conn, "diamond", ("root", []), ("l", ["root"]), ("r", ["root"]), ("join", ["l", "r"]))
    first, second = start(conn, "diamond"), start(conn, "diamond")
    complete_batch(conn, claim(conn, "diamond", 10))  # both roots
    branches = {(t["run_id"], t["step_slug"]): t for t in claim(conn, "diamond", 10)}
    # the first run's join through the batch path, the second's one task at a time
    complete_batch(conn, [branches[(first, "l")], branches[(first, "r")]])
    for step in ("l", "r"):
        t = branches[(second, step)]
        q(
            conn,
            "select pgflow.complete_task(%s, %s, %s, %s, %s)",
            second, step, 0, Jsonb({"from": step, "pad": "x" * 200}), t["attempt"],
        )  # fmt: skip
    for run_id in (first, second):
        join = task_of(conn, run_id, "join")
        assert join["status"] == "queued" and join["priority_at"] is not None
        assert join["input_bytes"] == sizes(conn, run_id, "l", "r")
        assert states(conn, run_id)["join"]["status"] == "started"
    assert task_of(conn, second, "join")["input_bytes"] > 400
    got = {t["run_id"]: t for t in claim(conn, "diamond", 10)}
    assert got[first]["input"] == {"l": {"from": "l"}, "r": {"from": "r"}}
    assert set(got[second]["input"]) == {"l", "r"}


def test_a_fan_in_with_a_skipped_dependency_starts_with_the_completed_ones(conn):
    define(
        conn, "f", ("gate", [], {"required_input_pattern": {"go": True}}), ("work", []),
        ("join", ["gate", "work"]),
    )  # fmt: skip
    define(conn, "other", ("x", []))
    run_id = one(conn, "select run_id from pgflow.start_flow('f', %s)", Jsonb({"go": False}))[
        "run_id"
    ]  # gate is skipped at the start
    assert states(conn, run_id)["gate"]["status"] == "skipped"
    start(conn, "other")
    complete_batch(conn, claim(conn, ["f", "other"], 10))  # work, with another run's task
    join = task_of(conn, run_id, "join")
    assert join["status"] == "queued" and join["input_bytes"] == sizes(conn, run_id, "work")
    [got] = claim(conn, "f", 10)
    assert got["step_slug"] == "join" and got["input"] == {"work": {"from": "work"}}


def test_a_fan_in_with_a_condition_is_still_evaluated_when_it_becomes_ready(conn):
    define(
        conn, "f", ("a", []), ("b", []),
        ("join", ["a", "b"], {"required_input_pattern": {"a": {"from": "nowhere"}}}),
    )  # fmt: skip
    run_id = start(conn, "f")
    complete_batch(conn, claim(conn, "f", 10))
    assert states(conn, run_id)["join"]["status"] == "skipped"
    assert [t["step_slug"] for t in tasks(conn, run_id)].count("join") == 0
    assert one(conn, "select status from pgflow.runs where run_id = %s", run_id)["status"] == (
        "completed"
    )
