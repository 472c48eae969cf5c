"""retry_run: a failed or cancelled run starts again where it stopped (docs/runs.md, "Retry").

Completed steps and map elements keep their outputs and are not run again; failed, cancelled
and never-started steps get a fresh attempt budget; condition skips stay; concurrent
retries and late reports of the old attempts change nothing they must not.
"""

from __future__ import annotations

import json
from typing import Any

import psycopg
import pytest

from tests.integration.races import race
from tests.integration.sql.helpers import (
    claim,
    complete,
    define,
    fail,
    one,
    q,
    run,
    start,
    states,
    tasks,
)


def _retry(conn: psycopg.Connection[Any], run_id: Any) -> dict[str, Any]:
    return one(conn, "select * from pgflow.retry_run(%s)", run_id)


def _by_step(conn: psycopg.Connection[Any], run_id: Any) -> dict[tuple[str, int], dict[str, Any]]:
    return {(t["step_slug"], t["task_index"]): t for t in tasks(conn, run_id)}


def _status(conn: psycopg.Connection[Any], run_id: Any) -> dict[str, str]:
    return {slug: s["status"] for slug, s in states(conn, run_id).items()}


def _failed_chain(conn: psycopg.Connection[Any]) -> dict[str, Any]:
    """a -> b -> c with one attempt each: a completes, b fails, so the run fails."""
    define(conn, "chain", ("a", []), ("b", ["a"]), ("c", ["b"]), max_attempts=1)
    r = start(conn, "chain", {"n": 1})
    complete(conn, claim(conn, "chain")[0], {"a": 1})
    fail(conn, claim(conn, "chain")[0], "bug in b")
    assert run(conn, r["run_id"])["status"] == "failed"
    return r


def test_a_failed_chain_resumes_at_the_failed_step_and_keeps_completed_outputs(conn):
    r = _failed_chain(conn)
    rid = r["run_id"]
    a_before = _by_step(conn, rid)[("a", 0)]
    retried = _retry(conn, rid)
    assert retried["status"] == "started" and retried["finished_at"] is None
    assert retried["error_message"] is None and retried["remaining_steps"] == 2
    assert _status(conn, rid) == {"a": "completed", "b": "started", "c": "created"}
    assert states(conn, rid)["c"]["remaining_deps"] == 1
    assert _by_step(conn, rid)[("a", 0)] == a_before  # not touched, not re-run
    (b,) = claim(conn, "chain")
    assert (b["step_slug"], b["attempt"], b["input"]) == ("b", 2, {"a": {"a": 1}})
    complete(conn, b, {"b": 2})
    (c,) = claim(conn, "chain")
    complete(conn, c, "done")
    finished = run(conn, rid)
    assert finished["status"] == "completed" and finished["output"] == {"c": "done"}
    assert finished["remaining_steps"] == 0


def test_retried_tasks_get_a_fresh_attempt_budget(conn):
    define(conn, "f", ("a", []), max_attempts=2, base_delay=0)
    rid = start(conn, "f")["run_id"]
    fail(conn, claim(conn, "f")[0])
    fail(conn, claim(conn, "f")[0])
    assert run(conn, rid)["status"] == "failed"
    _retry(conn, rid)
    (a,) = claim(conn, "f")
    assert a["attempt"] == 3
    assert fail(conn, a)["status"] == "queued"  # 1 of 2 in the fresh budget: retried again
    (a,) = claim(conn, "f")
    last = fail(conn, a)
    assert (last["status"], last["attempts_count"], last["forgiven_attempts"]) == ("failed", 4, 2)
    assert "(attempt 2 of 2)" in run(conn, rid)["error_message"]


def test_a_failed_map_reruns_only_its_failed_and_cancelled_elements(conn):
    define(conn, "m", ("items", [], {"step_type": "map"}), ("total", ["items"]), max_attempts=1)
    rid = start(conn, "m", [10, 20, 30, 40])["run_id"]
    e0, e1, _e2, e3 = claim(conn, "m")
    complete(conn, e0, 1)
    complete(conn, e3, 4)
    fail(conn, e1, "element 1 broke")  # e2 is still running: the failure cancels it
    assert run(conn, rid)["status"] == "failed"
    by = _by_step(conn, rid)
    assert [by[("items", i)]["status"] for i in range(4)] == [
        "completed",
        "failed",
        "cancelled",
        "completed",
    ]
    _retry(conn, rid)
    assert states(conn, rid)["items"]["remaining_tasks"] == 2
    again = claim(conn, "m")
    assert [(t["task_index"], t["input"], t["attempt"]) for t in again] == [(1, 20, 2), (2, 30, 2)]
    for t in again:
        complete(conn, t, t["input"] // 10)
    (total,) = claim(conn, "m")
    assert total["input"] == {"items": [1, 2, 3, 4]}
    complete(conn, total, 10)
    assert run(conn, rid)["output"] == {"total": 10}
    assert _by_step(conn, rid)[("items", 0)]["attempts_count"] == 1  # never claimed again


def test_a_cancelled_run_resumes_and_a_late_report_of_the_cancelled_attempt_is_fenced(conn):
    define(conn, "f", ("a", []), ("b", ["a"]))
    rid = start(conn, "f")["run_id"]
    (old,) = claim(conn, "f")
    q(conn, "select pgflow.cancel_run(%s)", rid)
    assert _retry(conn, rid)["status"] == "started"
    late = complete(conn, old, "from the cancelled handler")
    assert (late["status"], late["output"]) == ("queued", None)
    (new,) = claim(conn, "f")
    assert new["attempt"] == old["attempt"] + 1
    assert complete(conn, new, "A")["status"] == "completed"
    assert fail(conn, old, "late failure")["status"] == "completed"  # still fenced
    complete(conn, claim(conn, "f")[0], "B")
    assert run(conn, rid)["output"] == {"b": "B"}


def _skip_flow(conn: psycopg.Connection[Any]) -> Any:
    """a, then three branches: b (exhausted: skip-cascade) -> c; d (condition: skip-cascade)
    -> e; f fails the run."""
    cascade = {"when_exhausted": "skip-cascade"}
    condition = {"required_input_pattern": {"a": {"go": True}}, "when_unmet": "skip-cascade"}
    define(
        conn,
        "s",
        ("a", []),
        ("b", ["a"], cascade),
        ("c", ["b"]),
        ("d", ["a"], condition),
        ("e", ["d"]),
        ("f", ["a"]),
        max_attempts=1,
    )
    rid = start(conn, "s")["run_id"]
    complete(conn, claim(conn, "s")[0], {"go": False})
    b, f = sorted(claim(conn, "s"), key=lambda t: t["step_slug"])
    fail(conn, b, "b broke")
    fail(conn, f, "f broke")
    return rid


def test_failure_skips_run_again_and_condition_skips_stay(conn):
    rid = _skip_flow(conn)
    assert _status(conn, rid) == {
        "a": "completed",
        "b": "skipped",
        "c": "skipped",
        "d": "skipped",
        "e": "skipped",
        "f": "failed",
    }
    retried = _retry(conn, rid)
    assert retried["remaining_steps"] == 3
    assert _status(conn, rid) == {
        "a": "completed",
        "b": "started",
        "c": "created",
        "d": "skipped",
        "e": "skipped",
        "f": "started",
    }
    assert states(conn, rid)["d"]["skip_reason"].startswith("condition unmet")
    for t in claim(conn, "s"):
        complete(conn, t, t["step_slug"].upper())
    complete(conn, claim(conn, "s")[0], "C")
    assert run(conn, rid)["output"] == {"c": "C", "f": "F"}


def test_a_skip_that_a_later_step_acted_on_stays(conn):
    define(
        conn,
        "k",
        ("a", []),
        ("b", ["a"], {"when_exhausted": "skip"}),
        ("c", ["a", "b"]),
        max_attempts=1,
    )
    rid = start(conn, "k")["run_id"]
    complete(conn, claim(conn, "k")[0], 1)
    fail(conn, claim(conn, "k")[0], "b broke")  # b skipped: c starts without b's key
    (c,) = claim(conn, "k")
    assert c["input"] == {"a": 1}
    fail(conn, c, "c broke")
    _retry(conn, rid)
    assert _status(conn, rid) == {"a": "completed", "b": "skipped", "c": "started"}
    (c,) = claim(conn, "k")
    assert (c["step_slug"], c["input"]) == ("c", {"a": 1})


def test_a_condition_is_evaluated_again_when_its_input_runs_again(conn):
    define(
        conn,
        "g",
        ("a", [], {"when_exhausted": "skip"}),
        ("b", ["a"], {"required_input_pattern": {"a": 1}}),
        ("z", []),
        max_attempts=1,
    )
    rid = start(conn, "g")["run_id"]
    a, z = sorted(claim(conn, "g"), key=lambda t: t["step_slug"])
    fail(conn, a, "a broke")  # a skipped, so b's condition is unmet: b skipped
    fail(conn, z, "z broke")
    assert _status(conn, rid) == {"a": "skipped", "b": "skipped", "z": "failed"}
    _retry(conn, rid)
    assert _status(conn, rid) == {"a": "started", "b": "created", "z": "started"}
    for t in claim(conn, "g"):
        complete(conn, t, 1)
    (b,) = claim(conn, "g")
    assert b["input"] == {"a": 1}


def test_retrying_a_live_or_completed_run_changes_nothing(conn, db_url):
    define(conn, "f", ("a", []))
    live = start(conn, "f")
    done = start(conn, "f")
    for t in claim(conn, "f"):
        if t["run_id"] == done["run_id"]:
            complete(conn, t, 1)
    with psycopg.connect(db_url, autocommit=True) as listener:
        listener.execute(f'listen "pgflow_run_{live["run_id"]}"')
        listener.execute(f'listen "pgflow_run_{done["run_id"]}"')
        for r in (live, done):
            before = (run(conn, r["run_id"]), tasks(conn, r["run_id"]))
            assert _retry(conn, r["run_id"]) == before[0]
            assert (run(conn, r["run_id"]), tasks(conn, r["run_id"])) == before
        assert list(listener.notifies(timeout=0.2)) == []


def test_retry_emits_run_retried_and_wakes_workers(conn, db_url):
    rid = _failed_chain(conn)["run_id"]
    with psycopg.connect(db_url, autocommit=True) as listener:
        listener.execute("listen pgflow_tasks")
        listener.execute(f'listen "pgflow_run_{rid}"')
        # run events go to registered listeners only (0200_function_events.sql)
        listener.execute("select pgflow.watch_run(gen_random_uuid(), %s)", [rid])
        _retry(conn, rid)
        got = [(n.channel, n.payload) for n in listener.notifies(timeout=2, stop_after=3)]
    events = [json.loads(p)["event"] for c, p in got if c != "pgflow_tasks"]
    assert events == ["run:retried", "step:b:started"]
    assert ("pgflow_tasks", "chain") in got


def test_a_run_that_fails_at_start_fails_again_on_retry(conn):
    define(conn, "t", ("m", [], {"step_type": "map"}))
    rid = start(conn, "t", {"not": "an array"})["run_id"]
    again = _retry(conn, rid)
    assert again["status"] == "failed" and "TYPE_VIOLATION" in again["error_message"]
    assert tasks(conn, rid) == []


def test_unknown_run_and_changed_shape_are_refused(conn):
    with pytest.raises(psycopg.Error) as unknown:
        _retry(conn, "00000000-0000-0000-0000-000000000000")
    assert unknown.value.sqlstate == "PGF07"
    with pytest.raises(psycopg.Error) as null:
        _retry(conn, None)
    assert (null.value.sqlstate, null.value.diag.message_primary) == ("PGF07", "unknown run NULL")
    rid = _failed_chain(conn)["run_id"]
    q(conn, "update pgflow.runs set flow_checksum = 'not-the-shape' where run_id = %s", rid)
    before = (run(conn, rid), tasks(conn, rid), states(conn, rid))
    with pytest.raises(psycopg.Error) as changed:
        _retry(conn, rid)
    assert changed.value.sqlstate == "PGF11"
    assert "changed since the run started" in changed.value.diag.message_primary
    assert (run(conn, rid), tasks(conn, rid), states(conn, rid)) == before


def test_a_run_without_a_recorded_checksum_is_compared_step_by_step(conn):
    rid = _failed_chain(conn)["run_id"]
    q(conn, "update pgflow.runs set flow_checksum = null where run_id = %s", rid)
    assert _retry(conn, rid)["status"] == "started"
    q(conn, "select pgflow.cancel_run(%s)", rid)
    q(
        conn,
        "update pgflow.step_states set step_index = 7 where run_id = %s and step_slug = 'c'",
        rid,
    )
    with pytest.raises(psycopg.Error) as changed:
        _retry(conn, rid)
    assert changed.value.sqlstate == "PGF11"


def test_concurrent_retries_of_one_run_restart_it_once(conn, db_url):
    rid = _failed_chain(conn)["run_id"]
    outcome = race(
        db_url,
        lambda c: _retry(c, rid),
        lambda c: _retry(c, rid),
        while_blocked=lambda watcher, pid: None,  # the second must wait for the first
    )
    second = outcome.result()
    assert outcome.blocked and second["status"] == "started"
    by = _by_step(conn, rid)
    assert (by[("b", 0)]["status"], by[("b", 0)]["forgiven_attempts"]) == ("queued", 1)
    assert len(by) == 2  # a and b: nothing duplicated, c not started yet
    assert run(conn, rid)["remaining_steps"] == 2
    assert [t["step_slug"] for t in claim(conn, "chain")] == ["b"]


def test_a_late_failure_report_holding_the_task_delays_the_retry_and_changes_nothing(conn, db_url):
    define(conn, "f", ("a", []), ("b", []))
    rid = start(conn, "f")["run_id"]
    a, _b = sorted(claim(conn, "f"), key=lambda t: t["step_slug"])
    q(conn, "select pgflow.cancel_run(%s)", rid)
    outcome = race(
        db_url,
        lambda c: fail(c, a, "late"),  # locks a's task row, changes nothing
        lambda c: _retry(c, rid),
        while_blocked=lambda watcher, pid: None,
    )
    assert outcome.result()["status"] == "started"
    by = _by_step(conn, rid)
    assert [by[(s, 0)]["status"] for s in ("a", "b")] == ["queued", "queued"]
    assert by[("a", 0)]["error_message"] is None
    assert sorted(t["attempt"] for t in claim(conn, "f")) == [2, 2]


def test_late_reports_racing_an_uncommitted_retry_are_fenced(conn, db_url):
    define(conn, "f", ("a", []), ("b", []))
    rid = start(conn, "f")["run_id"]
    a, b = sorted(claim(conn, "f"), key=lambda t: t["step_slug"])
    q(conn, "select pgflow.cancel_run(%s)", rid)

    def late_reports(c: psycopg.Connection[Any]) -> list[dict[str, Any]]:
        return [complete(c, a, "late output"), fail(c, b, "late failure")]

    outcome = race(db_url, lambda c: _retry(c, rid), late_reports)
    outcome.result()
    by = _by_step(conn, rid)
    assert [(by[(s, 0)]["status"], by[(s, 0)]["output"]) for s in ("a", "b")] == [
        ("queued", None),
        ("queued", None),
    ]
    assert run(conn, rid)["status"] == "started"
    got = claim(conn, "f")
    assert sorted(t["attempt"] for t in got) == [2, 2]
    assert complete(conn, a, "old attempt again")["status"] == "started"  # fenced
    for t in got:
        complete(conn, t, t["step_slug"])
    assert run(conn, rid)["output"] == {"a": "a", "b": "b"}
