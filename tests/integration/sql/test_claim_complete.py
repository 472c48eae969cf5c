"""claim_tasks / complete_task(s): input building, leases, fencing, run completion."""

from __future__ import annotations

import json
import threading
import uuid
from typing import Any

from tests.integration.sql.helpers import (
    claim,
    complete,
    define,
    drain,
    one,
    q,
    run,
    start,
    states,
    tasks,
)


def test_chain_passes_outputs_and_completes_with_leaf_output(conn):
    define(conn, "f", ("a", []), ("b", ["a"]), ("c", ["b"]))
    r = start(conn, "f", {"v": 1})
    (a,) = claim(conn, "f")
    assert a["attempt"] == 1 and a["deadline"] is not None
    complete(conn, a, {"a": 1})
    (b,) = claim(conn, "f")
    assert b["input"] == {"a": {"a": 1}}
    complete(conn, b, 2)
    (c,) = claim(conn, "f")
    assert c["input"] == {"b": 2} and c["flow_input"] == {"v": 1}
    complete(conn, c, [3])
    final = run(conn, r["run_id"])
    assert final["status"] == "completed"
    assert final["output"] == {"c": [3]}
    assert final["remaining_steps"] == 0 and final["finished_at"] is not None


def test_output_is_all_completed_leaves(conn):
    define(conn, "f", ("a", []), ("b", ["a"]), ("c", ["a"]))
    r = start(conn, "f")
    drain(conn, "f", lambda t: t["step_slug"].upper())
    assert run(conn, r["run_id"])["output"] == {"b": "B", "c": "C"}


def test_lease_uses_step_timeout_over_flow_timeout(conn):
    define(conn, "f", ("a", [], {"timeout": 5}), ("b", []), timeout=100)
    start(conn, "f")
    rows = q(
        conn,
        "select step_slug, extract(epoch from leased_until - started_at)::int as s "
        "from pgflow.step_tasks where status = 'queued' or true order by step_slug",
    )
    assert rows == [{"step_slug": "a", "s": None}, {"step_slug": "b", "s": None}]
    claim(conn, "f")
    rows = q(
        conn,
        "select step_slug, round(extract(epoch from leased_until - started_at))::int as s "
        "from pgflow.step_tasks order by step_slug",
    )
    assert rows == [{"step_slug": "a", "s": 5}, {"step_slug": "b", "s": 100}]


def test_claim_respects_max_tasks_and_flow_filter(conn):
    define(conn, "f", ("a", []))
    define(conn, "g", ("a", []))
    for _ in range(5):
        start(conn, "f")
    start(conn, "g")
    assert len(claim(conn, "f", 3)) == 3
    assert len(claim(conn, "f", 10)) == 2
    assert [t["flow_slug"] for t in claim(conn, ["f", "g"], 10)] == ["g"]
    assert claim(conn, "f", 0) == []


def test_a_task_is_never_leased_twice_under_concurrency(conn, db_url):
    import psycopg

    define(conn, "f", ("a", []))
    for _ in range(200):
        start(conn, "f")
    seen: list[tuple] = []
    lock = threading.Lock()

    def worker() -> None:
        with psycopg.connect(db_url, autocommit=True) as c:
            while batch := claim(c, "f", 7):
                with lock:
                    seen.extend((t["run_id"], t["step_slug"], t["task_index"]) for t in batch)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(seen) == 200 and len(set(seen)) == 200


def test_duplicate_and_stale_reports_change_nothing(conn):
    define(conn, "f", ("a", []), ("b", ["a"]))
    r = start(conn, "f")
    (a,) = claim(conn, "f")
    first = complete(conn, a, "one")
    assert first["status"] == "completed"
    again = complete(conn, a, "two")
    assert again["status"] == "completed" and again["output"] == "one"
    stale = complete(conn, a, "three", attempt=99)
    assert stale["output"] == "one"
    assert states(conn, r["run_id"])["b"]["status"] == "started"
    assert one(conn, "select count(*) as n from pgflow.step_tasks where step_slug = 'b'")["n"] == 1


def test_report_for_unknown_task_returns_nothing_and_does_not_raise(conn):
    (row,) = q(conn, "select * from pgflow.complete_task(%s, 'x', 0, '1'::jsonb)", uuid.uuid4())
    assert row["status"] is None and row["run_id"] is None


def test_stale_attempt_is_fenced_after_lease_expiry(conn):
    define(conn, "f", ("a", []), base_delay=0)
    start(conn, "f")
    (first,) = claim(conn, "f")
    q(conn, "update pgflow.step_tasks set leased_until = now() - interval '1 second'")
    (second,) = claim(conn, "f")  # expiry re-queued it; claimed again as attempt 2
    assert second["attempt"] == 2
    late = complete(conn, first, "late")
    assert late["status"] == "started" and late["output"] is None
    done = complete(conn, second, "ok")
    assert done["status"] == "completed" and done["output"] == "ok"
    assert "lease expired" in tasks(conn, first["run_id"])[0]["error_message"]


def test_batch_completion_of_several_runs(conn):
    define(conn, "f", ("a", []))
    runs = [start(conn, "f", {"i": i})["run_id"] for i in range(4)]
    batch = claim(conn, "f", 10)
    rows = q(
        conn,
        "select * from pgflow.complete_tasks(%s, %s, %s, %s::jsonb[], %s)",
        [t["run_id"] for t in batch],
        [t["step_slug"] for t in batch],
        [t["task_index"] for t in batch],
        [f'{{"i": {t["input"]["i"]}}}' for t in batch],
        [t["attempt"] for t in batch],
    )
    assert all(r["status"] == "completed" for r in rows)
    outputs = {rid: run(conn, rid)["output"] for rid in runs}
    assert outputs == {rid: {"a": {"i": i}} for i, rid in enumerate(runs)}


def report(conn, keys: list[tuple[Any, str, int, int | None]], outputs: list[Any]) -> list:
    """complete_tasks for (run_id, step_slug, task_index, attempt) keys; the returned rows."""
    return q(
        conn,
        "select * from pgflow.complete_tasks(%s, %s, %s, %s::jsonb[], %s)",
        [k[0] for k in keys],
        [k[1] for k in keys],
        [k[2] for k in keys],
        [json.dumps(o) for o in outputs],
        [k[3] for k in keys],
    )


def key(task: dict[str, Any], attempt: int | None = None) -> tuple[Any, str, int, int | None]:
    return (task["run_id"], task["step_slug"], task["task_index"], attempt or task["attempt"])


def test_one_batch_completes_leased_tasks_and_returns_the_others_as_they_are(conn):
    # small outputs: the batch is completed by one update; the other reports change nothing
    define(conn, "m", ("each", [], {"step_type": "map"}))
    run_id = start(conn, "m", [0, 1, 2, 3, 4])["run_id"]
    t0, t1, t2, t3, t4 = sorted(claim(conn, "m", 10), key=lambda t: t["task_index"])
    complete(conn, t3, "earlier")
    unknown = (uuid.uuid4(), "each", 0, 1)
    rows = report(
        conn,
        [key(t4), key(t3), unknown, key(t1, attempt=7), key(t0), key(t2)],
        ["four", "again", "nobody", "stale", "zero", "two"],
    )
    assert len(rows) == 6
    by_index = {(r["run_id"], r["task_index"]): r for r in rows if r["run_id"] is not None}
    assert {i: (r["status"], r["output"]) for (_, i), r in by_index.items()} == {
        0: ("completed", "zero"),
        1: ("started", None),  # another attempt's report: fenced
        2: ("completed", "two"),
        3: ("completed", "earlier"),  # reported twice: the first report stands
        4: ("completed", "four"),
    }
    assert [r["task_index"] for r in rows if r["run_id"] is not None] == [0, 1, 2, 3, 4]
    assert states(conn, run_id)["each"]["remaining_tasks"] == 1
    report(conn, [key(t1)], ["one"])
    assert run(conn, run_id)["output"] == {"each": ["zero", "one", "two", "earlier", "four"]}


def test_a_batch_with_a_task_twice_completes_it_once(conn):
    define(conn, "m", ("each", [], {"step_type": "map"}))
    run_id = start(conn, "m", [0, 1])["run_id"]
    t0, t1 = sorted(claim(conn, "m", 10), key=lambda t: t["task_index"])
    rows = report(conn, [key(t1), key(t0), key(t1)], ["first", "zero", "second"])
    returned = [(r["task_index"], r["output"]) for r in rows]
    assert returned == [(0, "zero"), (1, "first"), (1, "first")]
    assert run(conn, run_id)["output"] == {"each": ["zero", "first"]}
    assert states(conn, run_id)["each"]["remaining_tasks"] == 0


def test_a_batch_with_a_large_output_completes_every_task(conn):
    # one output past the smallest inline limit: each task is handled on its own
    define(conn, "m", ("each", [], {"step_type": "map"}))
    run_id = start(conn, "m", [0, 1, 2])["run_id"]
    tasks_ = sorted(claim(conn, "m", 10), key=lambda t: t["task_index"])
    big = "x" * 5000
    rows = report(conn, [key(t) for t in tasks_], ["a", big, "c"])
    assert [r["status"] for r in rows] == ["completed"] * 3
    assert run(conn, run_id)["output"] == {"each": ["a", big, "c"]}


def test_release_requeues_without_using_up_an_attempt_or_reusing_its_number(conn):
    define(conn, "f", ("a", []), max_attempts=1)
    start(conn, "f")
    w = uuid.uuid4()
    claim(conn, "f", worker=w)
    assert one(conn, "select worker_id from pgflow.step_tasks")["worker_id"] == w
    assert one(conn, "select pgflow.release_tasks(%s) as n", w)["n"] == 1
    row = one(conn, "select status, attempts_count, releases, worker_id from pgflow.step_tasks")
    assert row == {"status": "queued", "attempts_count": 1, "releases": 1, "worker_id": None}
    task = claim(conn, "f")[0]
    assert task["attempt"] == 2  # attempt 1 belongs to the released claim, for good
    # max_attempts=1 still allows this attempt a retry-free failure of its own: the
    # release did not use the budget up
    row = q(conn, "select * from pgflow.fail_task(%s, 'a', 0, 'boom', 2)", task["run_id"])[0]
    assert (
        row["status"] == "failed" and "attempt 1 of 1" in run(conn, task["run_id"])["error_message"]
    )


def test_oversized_output_is_a_failed_attempt(conn):
    define(conn, "f", ("a", []), max_attempts=2, base_delay=0)
    r = start(conn, "f")
    q(conn, "select pgflow.set_setting('max_payload_bytes', 1000)")
    row = complete(conn, claim(conn, "f")[0], {"blob": "x" * 5000})
    assert row["status"] == "queued" and row["error_type"] == "OutputTooLarge"
    assert "over the limit of 1000 bytes" in row["error_message"]
    complete(conn, claim(conn, "f")[0], "small")
    assert run(conn, r["run_id"])["output"] == {"a": "small"}
