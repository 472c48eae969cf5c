"""keyed_run_id (Python) and _uuid7_at (SQL): one derivation, time-ordered, idempotent."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from pgflow import InvalidInputError, keyed_run_id
from tests.integration.sql.helpers import define, one, q, start

AT = datetime(2026, 11, 28, 9, 30, 15, 123000, tzinfo=UTC)


@pytest.mark.parametrize("key", ["order:42", "", "ünïcode ✓", "x" * 10_000])
def test_python_and_sql_derive_the_same_id(conn, key):
    sql = one(conn, "select pgflow._uuid7_at(%s, %s) as id", AT, key)["id"]
    assert keyed_run_id(key, AT) == sql


def test_the_id_is_a_uuid7_of_the_time_and_the_same_for_the_same_key_and_time():
    run_id = keyed_run_id("order:42", AT)
    assert run_id.version == 7 and run_id.variant == "specified in RFC 4122"
    assert run_id.int >> 80 == int(AT.timestamp() * 1000)
    assert keyed_run_id("order:42", AT.astimezone(timezone(timedelta(hours=5)))) == run_id
    assert keyed_run_id("order:43", AT) != run_id
    assert keyed_run_id("order:42", AT + timedelta(milliseconds=1)) > run_id  # time-ordered


def test_a_keyed_start_happens_once_and_lands_in_its_month(conn):
    define(conn, "f", ("a", []))
    now = one(conn, "select now() as at")["at"]
    run_id = keyed_run_id("order:7", now)
    first = start(conn, "f", {"n": 1}, run_id)
    again = start(conn, "f", {"n": 2}, run_id)
    assert first["run_id"] == again["run_id"] == run_id and again["input"] == {"n": 1}
    [home] = q(
        conn, "select tableoid::regclass::text as p from pgflow.runs where run_id = %s", run_id
    )
    assert home["p"].startswith("pgflow.runs_p")


@pytest.mark.parametrize(
    ("key", "at", "problem"),
    [
        (42, AT, "key must be a string"),
        ("k", datetime(2026, 11, 28), "timezone-aware"),
        ("k", "2026-11-28", "timezone-aware"),
        ("k", datetime(1969, 12, 31, tzinfo=UTC), "between 1970 and 10889"),
    ],
)
def test_bad_arguments_are_refused_with_a_hint(key, at, problem):
    with pytest.raises(InvalidInputError, match=problem) as raised:
        keyed_run_id(key, at)
    assert raised.value.hint
