"""Map steps: fan-out, ordered aggregation, empty arrays, TYPE_VIOLATION, fairness."""

from __future__ import annotations

from tests.integration.sql.helpers import claim, complete, define, drain, one, run, start, states


def test_root_map_over_flow_input_keeps_order_and_nulls(conn):
    define(conn, "f", ("m", [], {"step_type": "map"}), ("sum", ["m"]))
    start(conn, "f", [1, 2, None, 4])
    got = claim(conn, "f", 10)
    assert [(t["task_index"], t["input"]) for t in got] == [(0, 1), (1, 2), (2, None), (3, 4)]
    for t in reversed(got):  # complete out of order
        complete(conn, t, None if t["input"] is None else t["input"] * 10)
    (s,) = claim(conn, "f")
    assert s["input"] == {"m": [10, 20, None, 40]}


def test_dependent_map_over_step_output(conn):
    define(conn, "f", ("list", []), ("m", ["list"], {"step_type": "map"}))
    r = start(conn, "f")
    complete(conn, claim(conn, "f")[0], ["a", "b"])
    assert sorted(t["input"] for t in claim(conn, "f")) == ["a", "b"]
    assert states(conn, r["run_id"])["m"]["initial_tasks"] == 2


def test_empty_map_completes_at_once_and_cascades(conn):
    define(
        conn,
        "f",
        ("list", []),
        ("m", ["list"], {"step_type": "map"}),
        ("m2", ["m"], {"step_type": "map"}),
        ("after", ["m2"]),
    )
    r = start(conn, "f")
    complete(conn, claim(conn, "f")[0], [])
    st = states(conn, r["run_id"])
    assert st["m"]["status"] == "completed" and st["m"]["output"] == []
    assert st["m2"]["status"] == "completed" and st["m2"]["output"] == []
    (after,) = claim(conn, "f")
    assert after["input"] == {"m2": []}


def test_root_map_on_non_array_input_fails_run_with_type_violation(conn):
    define(conn, "f", ("m", [], {"step_type": "map"}), ("other", []))
    r = start(conn, "f", {"not": "a list"})
    assert r["status"] == "failed"
    assert "TYPE_VIOLATION" in r["error_message"] and '{"not": "a list"}' in r["error_message"]
    assert (
        one(
            conn, "select count(*) as n from pgflow.step_tasks where status in ('queued','started')"
        )["n"]
        == 0
    )
    assert claim(conn, "f") == []


def test_dependent_map_on_non_array_output_fails_run(conn):
    define(conn, "f", ("a", []), ("m", ["a"], {"step_type": "map"}), ("side", []))
    r = start(conn, "f")
    tasks = claim(conn, "f")
    a = next(t for t in tasks if t["step_slug"] == "a")
    complete(conn, a, 42)
    final = run(conn, r["run_id"])
    st = states(conn, r["run_id"])
    assert final["status"] == "failed" and "TYPE_VIOLATION" in final["error_message"]
    assert "42" in st["m"]["error_message"]
    assert st["side"]["status"] == "cancelled"


def test_large_map_does_not_block_later_work(conn):
    define(conn, "big", ("m", [], {"step_type": "map"}))
    define(conn, "small", ("a", []))
    start(conn, "big", list(range(2000)))
    start(conn, "small")
    batch = claim(conn, ["big", "small"], 500)
    assert "small" in [t["flow_slug"] for t in batch]


def test_map_of_thousand_elements_drains(conn):
    define(conn, "f", ("m", [], {"step_type": "map"}))
    r = start(conn, "f", list(range(1000)))
    assert drain(conn, "f", lambda t: t["input"] * 2) == 1000
    assert run(conn, r["run_id"])["output"] == {"m": [i * 2 for i in range(1000)]}
