"""start_flow: unknown slugs, idempotent starts, root steps, start_delay."""

from __future__ import annotations

import uuid

import psycopg
import pytest

from tests.integration.sql.helpers import claim, define, one, q, start, states


def test_unknown_flow_is_a_clear_error(conn):
    with pytest.raises(psycopg.Error) as exc:
        start(conn, "ghost")
    assert exc.value.sqlstate == "PGF02"
    assert "unknown flow 'ghost'" in exc.value.diag.message_primary
    assert "pgflow deploy" in exc.value.diag.message_hint
    assert one(conn, "select count(*) as n from pgflow.runs")["n"] == 0


def test_start_creates_states_and_root_tasks(conn):
    define(conn, "f", ("a", []), ("b", []), ("c", ["a", "b"]))
    r = start(conn, "f", {"x": 1})
    assert r["status"] == "started" and r["remaining_steps"] == 3
    st = states(conn, r["run_id"])
    assert {k: v["status"] for k, v in st.items()} == {
        "a": "started",
        "b": "started",
        "c": "created",
    }
    assert st["c"]["remaining_deps"] == 2
    tasks = claim(conn, "f")
    assert sorted(t["step_slug"] for t in tasks) == ["a", "b"]
    assert all(t["input"] == {"x": 1} and t["flow_input"] == {"x": 1} for t in tasks)


def test_idempotent_start_with_run_id(conn):
    define(conn, "f", ("a", []))
    rid = uuid.uuid4()
    first = start(conn, "f", {"n": 1}, rid)
    again = start(conn, "f", {"n": 2}, rid)
    assert again["run_id"] == first["run_id"] == rid
    assert again["input"] == {"n": 1}
    assert one(conn, "select count(*) as n from pgflow.step_tasks")["n"] == 1


def test_run_id_of_another_flow_is_refused(conn):
    define(conn, "f", ("a", []))
    define(conn, "g", ("a", []))
    rid = uuid.uuid4()
    start(conn, "f", {}, rid)
    with pytest.raises(psycopg.Error) as exc:
        start(conn, "g", {}, rid)
    assert exc.value.sqlstate == "PGF08"


def test_null_input_is_refused(conn):
    define(conn, "f", ("a", []))
    with pytest.raises(psycopg.Error) as exc:
        q(conn, "select pgflow.start_flow('f', null)")
    assert exc.value.sqlstate == "PGF08"


def test_flow_without_steps_completes_at_once(conn):
    define(conn, "empty")
    r = start(conn, "empty", {"a": 1})
    assert r["status"] == "completed" and r["output"] == {}


def test_start_delay_defers_root_task(conn):
    define(conn, "f", ("a", [], {"start_delay": 3600}))
    start(conn, "f")
    assert claim(conn, "f") == []
    row = one(conn, "select available_at - queued_at as d from pgflow.step_tasks")
    assert row["d"].total_seconds() == pytest.approx(3600, abs=1)


def test_oversized_input_is_refused_and_nothing_is_written(conn):
    define(conn, "f", ("a", []))
    q(conn, "select pgflow.set_setting('max_payload_bytes', 1000)")
    with pytest.raises(psycopg.Error) as exc:
        start(conn, "f", {"blob": "x" * 5000})
    assert exc.value.sqlstate == "PGF08"
    assert "over the limit of 1000 bytes" in exc.value.diag.message_primary
    assert one(conn, "select count(*) as n from pgflow.runs")["n"] == 0
