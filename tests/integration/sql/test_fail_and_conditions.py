"""fail_task (retries, backoff, when_exhausted) and conditions (if / if_not, when_unmet)."""

from __future__ import annotations

import pytest

from tests.integration.sql.helpers import (
    claim,
    complete,
    define,
    drain,
    fail,
    one,
    q,
    run,
    start,
    states,
    tasks,
)


def test_retry_backoff_doubles_and_is_capped(conn):
    define(conn, "f", ("a", [], {"max_attempts": 20, "base_delay": 1000}))
    start(conn, "f")
    (t,) = claim(conn, "f")
    row = fail(conn, t)
    assert row["status"] == "queued" and row["error_message"] == "boom"
    assert row["error_type"] == "ValueError" and row["error_traceback"] == "Traceback ..."
    delay = one(
        conn, "select extract(epoch from available_at - now()) as d from pgflow.step_tasks"
    )["d"]
    assert float(delay) == pytest.approx(2000, abs=2)  # base_delay * 2^1
    q(conn, "update pgflow.step_tasks set available_at = now(), attempts_count = 5")
    (t,) = claim(conn, "f")
    assert t["attempt"] == 6
    fail(conn, t)
    delay = one(
        conn, "select extract(epoch from available_at - now()) as d from pgflow.step_tasks"
    )["d"]
    assert float(delay) == pytest.approx(3600, abs=2)


def test_zero_base_delay_retries_at_once_and_counts_attempts(conn):
    define(conn, "f", ("a", []), max_attempts=3, base_delay=0)
    r = start(conn, "f")
    for attempt in (1, 2):
        (t,) = claim(conn, "f")
        assert t["attempt"] == attempt
        assert fail(conn, t)["status"] == "queued"
    (t,) = claim(conn, "f")
    assert fail(conn, t)["status"] == "failed"
    final = run(conn, r["run_id"])
    assert final["status"] == "failed"
    assert "ValueError: boom (attempt 3 of 3)" in final["error_message"]
    assert states(conn, r["run_id"])["a"]["status"] == "failed"


def test_failed_run_cancels_every_live_task_and_step(conn):
    define(
        conn,
        "f",
        ("a", []),
        ("b", []),
        ("m", [], {"step_type": "map"}),
        ("c", ["a", "b"]),
        max_attempts=1,
    )
    r = start(conn, "f", [1, 2, 3])
    got = claim(conn, "f", 2)
    a = (
        next(t for t in got if t["step_slug"] == "a")
        if any(t["step_slug"] == "a" for t in got)
        else None
    )
    target = a or got[0]
    fail(conn, target)
    assert run(conn, r["run_id"])["status"] == "failed"
    live = one(
        conn, "select count(*) as n from pgflow.step_tasks where status in ('queued', 'started')"
    )
    assert live["n"] == 0
    st = states(conn, r["run_id"])
    assert st["c"]["status"] == "cancelled"
    assert claim(conn, "f", 10) == []
    # late reports for cancelled tasks change nothing
    other = next(t for t in got if t is not target)
    assert complete(conn, other, 1)["status"] == "cancelled"


def test_when_exhausted_skip_lets_dependents_run_without_the_key(conn):
    define(
        conn,
        "f",
        ("a", []),
        ("opt", [], {"when_exhausted": "skip", "max_attempts": 1}),
        ("join", ["a", "opt"]),
    )
    r = start(conn, "f")
    for t in claim(conn, "f"):
        if t["step_slug"] == "opt":
            fail(conn, t, "flaky")
        else:
            complete(conn, t, "A")
    st = states(conn, r["run_id"])
    assert st["opt"]["status"] == "skipped" and "flaky" in st["opt"]["skip_reason"]
    (j,) = claim(conn, "f")
    assert j["input"] == {"a": "A"}
    complete(conn, j, "J")
    assert run(conn, r["run_id"])["output"] == {"join": "J"}


def test_when_exhausted_skip_cascade_skips_descendants(conn):
    define(
        conn,
        "f",
        ("a", [], {"when_exhausted": "skip-cascade", "max_attempts": 1}),
        ("b", ["a"]),
        ("c", ["b"]),
        ("side", []),
    )
    r = start(conn, "f")
    for t in claim(conn, "f"):
        (fail if t["step_slug"] == "a" else complete)(conn, t, "x")
    st = states(conn, r["run_id"])
    assert [st[s]["status"] for s in "abc"] == ["skipped", "skipped", "skipped"]
    assert "ancestor 'a'" in st["c"]["skip_reason"]
    final = run(conn, r["run_id"])
    assert final["status"] == "completed" and final["output"] == {"side": "x"}


def test_exhausted_map_task_with_skip_cancels_siblings(conn):
    define(conn, "f", ("m", [], {"step_type": "map", "when_exhausted": "skip", "max_attempts": 1}))
    r = start(conn, "f", [1, 2, 3])
    first, *_rest = [*claim(conn, "f", 1)]
    fail(conn, first)
    assert states(conn, r["run_id"])["m"]["status"] == "skipped"
    assert {t["status"] for t in tasks(conn, r["run_id"])} == {"failed", "cancelled"}
    assert run(conn, r["run_id"])["status"] == "completed"


@pytest.mark.parametrize(
    "options, flow_input, expected",
    [
        ({"required_input_pattern": {"go": True}}, {"go": True, "x": 1}, "started"),
        ({"required_input_pattern": {"go": True}}, {"go": False}, "skipped"),
        ({"forbidden_input_pattern": {"mode": "dry"}}, {"mode": "dry"}, "skipped"),
        ({"forbidden_input_pattern": {"mode": "dry"}}, {"mode": "wet"}, "started"),
    ],
)
def test_root_conditions(conn, options, flow_input, expected):
    define(conn, "f", ("a", [], options), ("b", []))
    r = start(conn, "f", flow_input)
    st = states(conn, r["run_id"])["a"]
    assert st["status"] == expected
    if expected == "skipped":
        assert st["skip_reason"].startswith("condition unmet")


def test_condition_on_dependency_output_and_skip_cascade(conn):
    define(
        conn,
        "f",
        ("check", []),
        (
            "notify",
            ["check"],
            {"required_input_pattern": {"check": {"ok": True}}, "when_unmet": "skip-cascade"},
        ),
        ("after", ["notify"]),
        ("other", ["check"]),
    )
    r = start(conn, "f")
    complete(conn, claim(conn, "f")[0], {"ok": False})
    st = states(conn, r["run_id"])
    assert st["notify"]["status"] == "skipped" and st["after"]["status"] == "skipped"
    drain(conn, "f", lambda t: "o")
    assert run(conn, r["run_id"])["output"] == {"other": "o"}


def test_when_unmet_fail_fails_the_run(conn):
    define(conn, "f", ("a", [], {"required_input_pattern": {"x": 1}, "when_unmet": "fail"}))
    r = start(conn, "f", {"x": 2})
    assert r["status"] == "failed" and "condition unmet" in r["error_message"]


def test_all_steps_skipped_completes_run_with_empty_output(conn):
    define(conn, "f", ("a", [], {"required_input_pattern": {"x": 1}}))
    r = start(conn, "f", {})
    assert r["status"] == "completed" and r["output"] == {}


def test_lease_expiry_exhausts_and_fails(conn):
    define(conn, "f", ("a", []), max_attempts=1)
    r = start(conn, "f")
    claim(conn, "f")
    q(conn, "update pgflow.step_tasks set leased_until = now() - interval '1 second'")
    assert one(conn, "select pgflow.sweep_expired_tasks() as n")["n"] == 1
    final = run(conn, r["run_id"])
    assert final["status"] == "failed" and "lease expired" in final["error_message"]
