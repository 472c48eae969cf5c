"""Concurrency and rate limits (set_limits), enforced by claim_tasks for every worker."""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any

import psycopg
import pytest
from psycopg.types.json import Jsonb

from pgflow.testing.clock import DatabaseClock
from tests.integration.sql.helpers import claim, complete, define, one, q, start


def set_limits(conn: psycopg.Connection[Any], flow: str, *limits: dict[str, Any]) -> list[str]:
    return list(one(conn, "select pgflow.set_limits(%s, %s) as c", flow, Jsonb(list(limits)))["c"])


def leased(conn: psycopg.Connection[Any], flow: str) -> dict[str, int]:
    rows = q(
        conn,
        "select step_slug, count(*) as n from pgflow.step_tasks"
        " where flow_slug = %s and status = 'started' group by step_slug",
        flow,
    )
    return {r["step_slug"]: r["n"] for r in rows}


def steps_of(tasks: list[dict[str, Any]]) -> list[str]:
    return sorted(t["step_slug"] for t in tasks)


def test_a_step_concurrency_limit_leases_at_most_that_many_and_frees_slots(conn):
    define(conn, "lim", ("a", []), ("b", []))
    assert set_limits(conn, "lim", {"step": "a", "kind": "concurrency", "max": 2}) == [
        "concurrency limit on step 'a' of flow 'lim' added: 2"
    ]
    for _ in range(5):
        start(conn, "lim")
    got = claim(conn, "lim", 100)
    assert steps_of(got) == ["a", "a"] + ["b"] * 5  # b has no limit: all of it
    assert claim(conn, "lim", 100) == []
    complete(conn, next(t for t in got if t["step_slug"] == "a"), 1)
    again = claim(conn, "lim", 100)
    assert steps_of(again) == ["a"]  # one slot freed, one task
    assert leased(conn, "lim") == {"a": 2, "b": 5}


def test_a_full_step_does_not_hide_the_other_steps_behind_it(conn):
    define(conn, "hol", ("slow", []), ("fast", []))
    set_limits(conn, "hol", {"step": "slow", "kind": "concurrency", "max": 1})
    for _ in range(30):
        start(conn, "hol")
    first = claim(conn, "hol", 3)
    assert steps_of(first).count("slow") == 1
    # slow is full now: claims of one task each still find fast's tasks behind slow's
    for _ in range(5):
        [task] = claim(conn, "hol", 1)
        assert task["step_slug"] == "fast"


def test_a_flow_concurrency_limit_counts_every_step(conn):
    define(conn, "whole", ("a", []), ("b", []), ("c", ["a"]))
    set_limits(conn, "whole", {"step": None, "kind": "concurrency", "max": 3})
    for _ in range(4):
        start(conn, "whole")
    got = claim(conn, "whole", 100)
    assert len(got) == 3
    for task in got:
        complete(conn, task, 1)
    assert len(claim(conn, "whole", 100)) == 3
    assert sum(leased(conn, "whole").values()) == 3


def test_a_keyed_limit_holds_per_value_of_the_input_field(conn):
    define(conn, "keyed", ("call", []))
    set_limits(conn, "keyed", {"step": "call", "kind": "concurrency", "max": 2, "key": "customer"})
    for customer in ["acme"] * 5 + ["bolt"] * 5 + [7] * 1:
        start(conn, "keyed", {"customer": customer})
    start(conn, "keyed", {"other": 1})  # no such field: the group of null
    start(conn, "keyed", {"customer": None})
    got = claim(conn, "keyed", 100)
    by_customer: dict[Any, int] = {}
    for task in got:
        value = task["flow_input"].get("customer")
        by_customer[value] = by_customer.get(value, 0) + 1
    assert by_customer == {"acme": 2, "bolt": 2, 7: 1, None: 2}


def test_a_keyed_flow_limit(conn):
    define(conn, "tenant", ("a", []), ("b", []))
    set_limits(conn, "tenant", {"step": None, "kind": "concurrency", "max": 3, "key": "t"})
    for tenant in ("x", "x", "y"):
        start(conn, "tenant", {"t": tenant})
    got = claim(conn, "tenant", 100)
    tenants = sorted(t["flow_input"]["t"] for t in got)
    assert tenants == ["x", "x", "x", "y", "y"]


def test_an_expired_lease_frees_its_slot(conn, db_url):
    clock = DatabaseClock(db_url)
    clock.install()
    try:
        define(conn, "lease", ("a", []), timeout=30)
        set_limits(conn, "lease", {"step": "a", "kind": "concurrency", "max": 1})
        start(conn, "lease")
        start(conn, "lease")
        [held] = claim(conn, "lease", 10)  # its worker dies: never completes
        assert claim(conn, "lease", 10) == []
        clock.advance(31)
        [next_task] = claim(conn, "lease", 10)  # the slot is free again
        assert next_task["attempt"] >= 1
        assert leased(conn, "lease") == {"a": 1}
        assert held["run_id"] is not None
    finally:
        clock.close()


def test_a_rate_limit_is_a_token_bucket_on_the_database_clock(conn, db_url):
    clock = DatabaseClock(db_url)
    clock.install()
    try:
        clock.freeze()
        define(conn, "rated", ("call", []))
        set_limits(conn, "rated", {"step": "call", "kind": "rate", "max": 3, "per": 60})
        for _ in range(20):
            start(conn, "rated")
        assert len(claim(conn, "rated", 100)) == 3  # a full bucket: the burst
        assert claim(conn, "rated", 100) == []
        clock.advance(20)  # 3 per 60 s refills one token every 20 s
        assert len(claim(conn, "rated", 100)) == 1
        assert claim(conn, "rated", 100) == []
        clock.advance(600)  # never more than a full bucket
        assert len(claim(conn, "rated", 100)) == 3
    finally:
        clock.close()


def test_a_keyed_rate_limit_has_a_bucket_per_value(conn, db_url):
    clock = DatabaseClock(db_url)
    clock.install()
    try:
        clock.freeze()
        define(conn, "krate", ("call", []))
        set_limits(
            conn, "krate", {"step": "call", "kind": "rate", "max": 2, "per": 10, "key": "api"}
        )
        for api in ["a"] * 5 + ["b"] * 5:
            start(conn, "krate", {"api": api})
        got = claim(conn, "krate", 100)
        assert sorted(t["flow_input"]["api"] for t in got) == ["a", "a", "b", "b"]
        clock.advance(5)
        assert sorted(t["flow_input"]["api"] for t in claim(conn, "krate", 100)) == ["a", "b"]
        # idle buckets are full again: a claim deletes them instead of keeping a row per key
        clock.advance(3600)
        claim(conn, "krate", 0)
        start(conn, "krate", {"api": "c"})
        claim(conn, "krate", 1)
        keys = [r["key_value"] for r in q(conn, "select key_value from pgflow.rate_buckets")]
        assert sorted(keys) in (['"a"'], ['"b"'], ['"c"'])
    finally:
        clock.close()


def test_limits_and_a_pool_together(conn):
    define(conn, "both", ("a", []), ("b", []))
    set_limits(conn, "both", {"step": "b", "kind": "concurrency", "max": 1})
    for _ in range(3):
        start(conn, "both")
    got = q(
        conn,
        "select * from pgflow.claim_tasks(%s, %s, 10, step_slugs => %s)",
        ["both"],
        uuid.uuid4(),
        ["b"],
    )
    assert steps_of(got) == ["b"]


def test_set_limits_reports_changes_and_replaces_the_whole_set(conn):
    define(conn, "conf", ("a", []), ("b", []))
    limits = [
        {"step": "a", "kind": "concurrency", "max": 5, "key": "k"},
        {"step": "a", "kind": "rate", "max": 100, "per": 60},
        {"step": None, "kind": "concurrency", "max": 20},
    ]
    assert len(set_limits(conn, "conf", *limits)) == 3
    assert set_limits(conn, "conf", *limits) == []  # the same again: nothing changes
    changed = set_limits(conn, "conf", limits[0], {**limits[1], "max": 50})
    assert changed == [
        "rate limit on step 'a' of flow 'conf' changed: 100 per 60 s -> 50 per 60 s",
        "concurrency limit on flow 'conf' removed",
    ]
    assert set_limits(conn, "conf") == [
        "concurrency limit on step 'a' of flow 'conf' removed",
        "rate limit on step 'a' of flow 'conf' removed",
    ]
    assert q(conn, "select * from pgflow.limits") == []


@pytest.mark.parametrize(
    ("limits", "message"),
    [
        ({"step": "a", "kind": "concurrency", "max": 0}, "max must be a whole number"),
        ({"step": "a", "kind": "concurrency", "max": 2.5}, "max must be a whole number"),
        ({"step": "a", "kind": "concurrency", "max": "5"}, "is malformed"),
        ({"step": "nope", "kind": "concurrency", "max": 1}, "has no such step"),
        ({"step": "a", "kind": "speed", "max": 1}, "has kind 'speed'"),
        ({"step": None, "kind": "rate", "max": 1, "per": 60}, "a rate limit applies to a step"),
        ({"step": "a", "kind": "rate", "max": 1}, '"per" (seconds) is given for a rate'),
        ({"step": "a", "kind": "concurrency", "max": 1, "per": 5}, '"per" (seconds)'),
        ({"step": "a", "kind": "rate", "max": 1, "per": 0}, "per must be from 1 second"),
        ({"step": "a", "kind": "concurrency", "max": 1, "key": ""}, "key must be a field name"),
        ("not an object", "is malformed"),
    ],
)
def test_set_limits_refuses_bad_limits_and_changes_nothing(conn, limits, message):
    define(conn, "bad", ("a", []))
    set_limits(conn, "bad", {"step": "a", "kind": "concurrency", "max": 3})
    with pytest.raises(psycopg.Error) as caught:
        set_limits(conn, "bad", {"step": "a", "kind": "rate", "max": 1, "per": 1}, limits)
    assert caught.value.sqlstate == "PGF03"
    assert message in str(caught.value)
    rows = q(conn, "select step_slug, kind, max_count from pgflow.limits")
    assert rows == [{"step_slug": "a", "kind": "concurrency", "max_count": 3}]


def test_set_limits_on_an_unknown_flow_or_a_non_array(conn):
    with pytest.raises(psycopg.Error) as caught:
        set_limits(conn, "ghost")
    assert caught.value.sqlstate == "PGF02"
    define(conn, "dup", ("a", []))
    with pytest.raises(psycopg.Error) as caught:
        one(conn, "select pgflow.set_limits('dup', '{}') as c")
    assert caught.value.sqlstate == "PGF03"
    limit = {"step": "a", "kind": "concurrency", "max": 1}
    with pytest.raises(psycopg.Error, match="two concurrency limits"):
        set_limits(conn, "dup", limit, {**limit, "max": 2})


def test_eight_concurrent_claimers_never_exceed_the_limits(db_url):
    """8 workers claim and complete while a monitor reads the leased counts: a step limit
    of 4 and a keyed limit of 2 per customer are never exceeded, and every task runs."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        define(conn, "race", ("work", []), ("other", []))
        set_limits(conn, "race", {"step": "work", "kind": "concurrency", "max": 4})
        set_limits(
            conn,
            "race",
            {"step": "work", "kind": "concurrency", "max": 4},
            {"step": "other", "kind": "concurrency", "max": 2, "key": "c"},
        )
        runs = [start(conn, "race", {"c": i % 3})["run_id"] for i in range(60)]
    stop = threading.Event()
    seen: list[tuple[int, int]] = []
    errors: list[BaseException] = []

    def monitor() -> None:
        with psycopg.connect(db_url, autocommit=True) as mconn:
            while not stop.is_set():
                row = one(
                    mconn,
                    "select (select count(*) from pgflow.step_tasks"
                    "   where step_slug = 'work' and status = 'started') as work,"
                    " (select coalesce(max(n), 0) from (select count(*) as n"
                    "   from pgflow.step_tasks o join pgflow.runs r on r.run_id = o.run_id"
                    "   where o.step_slug = 'other' and o.status = 'started'"
                    "   group by r.input -> 'c') k) as per_key",
                )
                seen.append((row["work"], row["per_key"]))

    def worker() -> None:
        try:
            with psycopg.connect(db_url, autocommit=True) as wconn:
                idle = 0
                while idle < 20:
                    got = claim(wconn, "race", 3)
                    idle = 0 if got else idle + 1
                    time.sleep(0.002 if got else 0.01)  # hold the leases a little
                    for task in got:
                        complete(wconn, task, 1)
        except Exception as exc:  # noqa: BLE001 - surfaced by the assertion below
            errors.append(exc)

    watcher = threading.Thread(target=monitor)
    watcher.start()
    workers = [threading.Thread(target=worker) for _ in range(8)]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join(60)
    stop.set()
    watcher.join(10)
    assert errors == []
    assert max(w for w, _ in seen) == 4  # reached, never exceeded
    assert max(k for _, k in seen) == 2
    with psycopg.connect(db_url, autocommit=True) as conn:
        done = one(
            conn,
            "select count(*) filter (where status = 'completed') as n from pgflow.runs"
            " where run_id = any(%s)",
            runs,
        )
    assert done["n"] == 60


def test_a_keyed_limit_groups_runs_whose_input_is_stored_by_reference(conn):
    """An input over the inline limit is stored by reference; the field the limit is keyed
    by stays readable (runs.limit_keys), so the run is grouped by its real value, not by the
    reference's fields (size, sha256, store) nor in the group of null."""
    define(conn, "bulky", ("call", []))
    set_limits(conn, "bulky", {"step": "call", "kind": "concurrency", "max": 1, "key": "size"})
    padding = "x" * 100_000  # far over the 64 KiB inline limit
    for size in ["s", "s", "m", "m", "l"]:
        start(conn, "bulky", {"size": size, "padding": padding})
    stored = q(conn, "select input ? '$pgflow_ref' as by_ref, limit_keys from pgflow.runs")
    assert {(r["by_ref"], r["limit_keys"]["size"]) for r in stored} == {
        (True, "s"),
        (True, "m"),
        (True, "l"),
    }
    got = claim(conn, "bulky", 100)
    assert len(got) == 3  # one per distinct size, as with inline inputs


def test_a_huge_key_value_groups_like_a_short_one_and_keeps_bucket_rows_small(conn, db_url):
    """Key values are compared by their JSON text; one over 128 characters stands as its
    md5, so a starter cannot make every claim (or a rate bucket row) carry megabytes."""
    clock = DatabaseClock(db_url)
    clock.install()
    try:
        clock.freeze()
        define(conn, "huge", ("call", []))
        set_limits(
            conn,
            "huge",
            {"step": "call", "kind": "concurrency", "max": 1, "key": "k"},
            {"step": "call", "kind": "rate", "max": 5, "per": 60, "key": "k"},
        )
        big, other = "x" * 50_000, "x" * 49_999 + "y"
        for value in [big, big, other, "short"]:
            start(conn, "huge", {"k": value})
        got = claim(conn, "huge", 100)
        assert sorted(len(t["flow_input"]["k"]) for t in got) == [5, 50_000, 50_000]
        widths = [r["n"] for r in q(conn, "select length(key_value) as n from pgflow.rate_buckets")]
        assert len(widths) == 3 and max(widths) <= 128
    finally:
        clock.close()
