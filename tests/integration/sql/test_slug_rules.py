"""Slug rules of pgflow 0.17 in SQL: no leading or trailing `_` for new flows and steps, step
slugs unique regardless of letter case; flows deployed under the older rule keep working."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from tests.integration.sql.helpers import define, one, q, start


def refused(conn: psycopg.Connection[Any], sql: str, *params: Any) -> psycopg.Error:
    with pytest.raises(psycopg.Error) as caught:
        q(conn, sql, *params)
    return caught.value


@pytest.mark.parametrize("slug", ["_flow", "flow_", "_", "__x__"])
def test_a_new_flow_slug_may_not_start_or_end_with_an_underscore(conn, slug: str) -> None:
    error = refused(conn, "select pgflow.create_flow(%s)", slug)
    assert error.sqlstate == "PGF01"
    assert error.diag.message_primary == f"invalid flow slug '{slug}'"
    assert "does not end with _" in (error.diag.message_hint or "")
    assert one(conn, "select count(*) as n from pgflow.flows")["n"] == 0


@pytest.mark.parametrize("slug", ["_step", "step_"])
def test_a_new_step_slug_may_not_start_or_end_with_an_underscore(conn, slug: str) -> None:
    define(conn, "f", ("a", []))
    error = refused(conn, "select pgflow.add_step('f', %s, array['a'])", slug)
    assert (error.sqlstate, error.diag.message_primary) == ("PGF01", f"invalid step slug '{slug}'")
    assert one(conn, "select count(*) as n from pgflow.steps")["n"] == 1


def test_a_new_step_slug_must_differ_in_more_than_letter_case(conn) -> None:
    define(conn, "f", ("fetch", []))
    error = refused(conn, "select pgflow.add_step('f', 'Fetch')")
    assert error.sqlstate == "PGF05"
    assert "the flow already has a step 'fetch'" in error.diag.message_primary
    assert "letter case" in (error.diag.message_hint or "")
    define(conn, "g", ("Fetch", []))  # other flows are not concerned
    q(conn, "select pgflow.add_step('f', 'fetch')")  # re-applying the same step still works


def test_underscores_inside_a_slug_are_fine(conn) -> None:
    define(conn, "a_b__c", ("x_1", []), ("y__2", ["x_1"]))
    assert start(conn, "a_b__c")["status"] == "started"


def test_flows_deployed_under_the_older_rule_keep_working(conn) -> None:
    # rows the earlier releases accepted: the table constraints still allow them
    q(conn, "insert into pgflow.flows (flow_slug) values ('_legacy_')")
    q(
        conn,
        "insert into pgflow.steps (flow_slug, step_slug, step_index) values "
        "('_legacy_', '_a', 0), ('_legacy_', 'B', 1), ('_legacy_', 'b', 2), ('_legacy_', 'd', 3)",
    )
    # re-applying their SQL is a no-op that updates options, and they start
    q(conn, "select pgflow.create_flow('_legacy_', timeout => 5)")
    for step in ("_a", "B", "b", "d"):
        q(conn, "select pgflow.add_step('_legacy_', %s, timeout => 7)", step)
    assert one(conn, "select opt_timeout from pgflow.flows")["opt_timeout"] == 5
    assert start(conn, "_legacy_")["remaining_steps"] == 4
    # a new step still follows the new rules
    assert refused(conn, "select pgflow.add_step('_legacy_', 'c_')").sqlstate == "PGF01"
    assert refused(conn, "select pgflow.add_step('_legacy_', 'D')").sqlstate == "PGF05"
    q(conn, "select pgflow.add_step('_legacy_', 'c')")


def test_pgflow_style_sql_with_valid_slugs_loads(conn) -> None:
    # what pgflow's TypeScript compiler emits: no shape, positional and named arguments
    q(
        conn,
        """
        SELECT pgflow.create_flow('analyze_website', max_attempts => 3, timeout => 60);
        SELECT pgflow.add_step('analyze_website', 'website');
        SELECT pgflow.add_step('analyze_website', 'sentiment', ARRAY['website'],
          max_attempts => 5);
        SELECT pgflow.add_step('analyze_website', 'saveToDb', ARRAY['sentiment', 'website']);
        """,
    )
    assert start(conn, "analyze_website", {"url": "x"})["remaining_steps"] == 3
