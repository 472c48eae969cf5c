"""prune, prune_batch and apply_retention: finished history goes, live runs never do."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from tests.integration.sql.helpers import claim, complete, define, fail, one, q, start


def _age(conn: psycopg.Connection[Any], run_id: Any, days: int) -> None:
    q(
        conn,
        "update pgflow.runs set started_at = now() - make_interval(days => %s),"
        " finished_at = case when status <> 'started' then now() - make_interval(days => %s) end"
        " where run_id = %s",
        days,
        days,
        run_id,
    )


def _history(conn: psycopg.Connection[Any]) -> dict[str, Any]:
    """Flows f and g, each with an old completed, failed, cancelled and live run."""
    define(conn, "f", ("a", []), max_attempts=1)
    define(conn, "g", ("a", []), max_attempts=1)
    runs: dict[str, Any] = {}
    for flow in ("f", "g"):
        done, failed, cancelled, live = (start(conn, flow)["run_id"] for _ in range(4))
        for task in claim(conn, flow):
            if task["run_id"] == done:
                complete(conn, task, 1)
            elif task["run_id"] == failed:
                fail(conn, task)
        q(conn, "select pgflow.cancel_run(%s)", cancelled)
        for name, rid in (("completed", done), ("failed", failed), ("cancelled", cancelled)):
            runs[f"{flow}.{name}"] = rid
        runs[f"{flow}.live"] = live
        for rid in (done, failed, cancelled, live):
            _age(conn, rid, 10)
    return runs


def _left(conn: psycopg.Connection[Any]) -> set[Any]:
    return {r["run_id"] for r in q(conn, "select run_id from pgflow.runs")}


def test_prune_batch_filters_by_flow_and_status_and_reports_what_it_deleted(conn):
    runs = _history(conn)
    got = q(
        conn,
        "select * from pgflow.prune_batch('1 day', flow_slug => 'f',"
        " statuses => array['failed', 'cancelled'])",
    )
    assert got == [
        {"flow": "f", "status": "cancelled", "runs": 1},
        {"flow": "f", "status": "failed", "runs": 1},
    ]
    assert _left(conn) == set(runs.values()) - {runs["f.failed"], runs["f.cancelled"]}
    orphans = one(
        conn,
        "select (select count(*) from pgflow.step_tasks t where t.run_id = any(%s))"
        " + (select count(*) from pgflow.step_states s where s.run_id = any(%s)) as n",
        [runs["f.failed"], runs["f.cancelled"]],
        [runs["f.failed"], runs["f.cancelled"]],
    )
    assert orphans["n"] == 0


def test_prune_never_touches_live_runs_and_keeps_its_old_call_form(conn):
    runs = _history(conn)
    assert one(conn, "select pgflow.prune('1 day') as n")["n"] == 6
    assert _left(conn) == {runs["f.live"], runs["g.live"]}
    assert one(conn, "select pgflow.prune('0 seconds') as n")["n"] == 0


def test_prune_in_batches_deletes_oldest_first_and_at_most_the_batch(conn):
    runs = _history(conn)
    _age(conn, runs["g.completed"], 20)
    assert one(conn, "select pgflow.prune('1 day', batch_size => 1) as n")["n"] == 1
    assert runs["g.completed"] not in _left(conn)
    assert one(conn, "select pgflow.prune('1 day', batch_size => 4) as n")["n"] == 4
    assert one(conn, "select pgflow.prune('1 day', batch_size => 4) as n")["n"] == 1


def test_runs_younger_than_the_cut_off_stay(conn):
    runs = _history(conn)
    _age(conn, runs["f.completed"], 1)
    q(conn, "select pgflow.prune('2 days')")
    assert _left(conn) == {runs["f.completed"], runs["f.live"], runs["g.live"]}


@pytest.mark.parametrize(
    ("call", "message"),
    [
        ("pgflow.prune_batch('1 day', statuses => array['started'])", "status 'started'"),
        ("pgflow.prune_batch('1 day', statuses => array['done'])", "status 'done'"),
        ("pgflow.prune_batch('1 day', statuses => array[null])", "status NULL"),
        ("pgflow.prune_batch('-1 day')", "0 or more, got -1 days"),
        ("pgflow.prune_batch(null)", "got NULL"),
        ("pgflow.prune_batch('1 day', max_runs => 0)", "at least 1"),
        ("pgflow.prune('1 day', statuses => array['started'])", "status 'started'"),
        ("pgflow.apply_retention(0)", "at least 1"),
    ],
)
def test_bad_arguments_are_refused_and_change_nothing(conn, call, message):
    runs = _history(conn)
    with pytest.raises(psycopg.Error) as caught:
        q(conn, f"select * from {call}")
    assert caught.value.sqlstate == "PGF08"
    assert message in caught.value.diag.message_primary
    assert _left(conn) == set(runs.values())


def test_apply_retention_prunes_flows_with_a_retention_within_its_budget(conn):
    runs = _history(conn)
    q(conn, "update pgflow.flows set retention = '5 days' where flow_slug = 'g'")
    assert one(conn, "select pgflow.apply_retention(2) as n")["n"] == 2
    assert one(conn, "select pgflow.apply_retention(2) as n")["n"] == 1
    assert one(conn, "select pgflow.apply_retention(2) as n")["n"] == 0
    assert _left(conn) == set(runs.values()) - {
        runs["g.completed"],
        runs["g.failed"],
        runs["g.cancelled"],
    }


def test_apply_retention_skips_at_once_while_another_caller_holds_it(conn, db_url):
    runs = _history(conn)
    q(conn, "update pgflow.flows set retention = '5 days'")
    with psycopg.connect(db_url) as other:
        assert other.execute("select pgflow.apply_retention(1)").fetchone() == (1,)
        # `other` still holds the retention lock (its transaction is open)
        assert one(conn, "select pgflow.apply_retention(10) as n")["n"] is None
        other.rollback()
    assert one(conn, "select pgflow.apply_retention(10) as n")["n"] == 6
    assert _left(conn) == {runs["f.live"], runs["g.live"]}


def test_prune_skips_a_run_being_retried(conn, db_url):
    runs = _history(conn)
    with psycopg.connect(db_url) as other:
        other.execute("select pgflow.retry_run(%s)", [runs["f.failed"]])
        assert one(conn, "select pgflow.prune('1 day') as n")["n"] == 5  # not blocked
        other.commit()
    assert runs["f.failed"] in _left(conn)
