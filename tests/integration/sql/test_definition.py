"""create_flow / add_step: validation, immutability, declared shapes."""

from __future__ import annotations

import json

import psycopg
import pytest
from psycopg.types.json import Jsonb

from tests.integration.sql.helpers import define, one, q, start


def sqlstate_of(excinfo: pytest.ExceptionInfo[psycopg.Error]) -> str | None:
    return excinfo.value.sqlstate


@pytest.mark.parametrize("slug", ["", "1abc", "has-dash", "run", "input", "x" * 129, "sp ace"])
def test_create_flow_refuses_invalid_slug(conn, slug):
    with pytest.raises(psycopg.Error) as exc:
        q(conn, "select pgflow.create_flow(%s)", slug)
    assert sqlstate_of(exc) == "PGF01"
    assert "invalid flow slug" in exc.value.diag.message_primary
    assert exc.value.diag.message_hint


def test_valid_slug_edge_cases(conn):
    assert one(conn, "select pgflow.is_valid_slug(%s) as ok", "_a" + "b" * 126)["ok"] is True
    assert one(conn, "select pgflow.is_valid_slug(null) as ok")["ok"] is False


def test_add_step_to_unknown_flow_names_the_flow(conn):
    with pytest.raises(psycopg.Error) as exc:
        q(conn, "select pgflow.add_step('nope', 'a')")
    assert sqlstate_of(exc) == "PGF02"
    assert "'nope'" in exc.value.diag.message_primary


def test_unknown_dependency_is_refused(conn):
    define(conn, "f", ("a", []))
    with pytest.raises(psycopg.Error) as exc:
        q(conn, "select pgflow.add_step('f', 'b', array['zzz'])")
    assert sqlstate_of(exc) == "PGF03"
    assert "unknown dependency 'zzz'" in exc.value.diag.message_primary
    assert one(conn, "select count(*) as n from pgflow.steps")["n"] == 1


def test_map_with_two_deps_is_refused(conn):
    define(conn, "f", ("a", []), ("b", []))
    with pytest.raises(psycopg.Error) as exc:
        q(conn, "select pgflow.add_step('f', 'm', array['a', 'b'], step_type => 'map')")
    assert sqlstate_of(exc) == "PGF05"
    assert "at most one dependency" in exc.value.diag.message_primary


@pytest.mark.parametrize(
    "named, code",
    [
        ("max_attempts => 0", "PGF03"),
        ("base_delay => -1", "PGF03"),
        ("timeout => 0", "PGF03"),
        ("start_delay => -5", "PGF03"),
        ("step_type => 'loop'", "PGF05"),
        ("when_unmet => 'explode'", "PGF05"),
        ("required_input_pattern => '[1]'::jsonb", "PGF05"),
        ("forbidden_input_pattern => '\"x\"'::jsonb", "PGF05"),
    ],
)
def test_bad_step_options_are_refused(conn, named, code):
    define(conn, "f", ("a", []))
    with pytest.raises(psycopg.Error) as exc:
        q(conn, f"select pgflow.add_step('f', 'b', {named})")
    assert sqlstate_of(exc) == code
    assert "step 'b' of flow 'f'" in exc.value.diag.message_primary


def test_same_step_twice_is_a_noop_and_updates_options(conn):
    define(conn, "f", ("a", []))
    q(conn, "select pgflow.add_step('f', 'a', timeout => 9)")
    row = one(conn, "select step_index, opt_timeout from pgflow.steps where step_slug = 'a'")
    assert row == {"step_index": 0, "opt_timeout": 9}


def test_changed_step_is_refused(conn):
    define(conn, "f", ("a", []), ("b", []))
    with pytest.raises(psycopg.Error) as exc:
        q(conn, "select pgflow.add_step('f', 'b', array['a'])")
    assert sqlstate_of(exc) == "PGF04"
    assert "deps" in exc.value.diag.message_primary
    assert "'f_v2'" in exc.value.diag.message_hint


def shape(flow: str, *steps: dict) -> dict:
    defaults = {
        "deps": [],
        "step_type": "single",
        "when_unmet": "skip",
        "when_exhausted": "fail",
        "required_input_pattern": None,
        "forbidden_input_pattern": None,
    }
    return {"version": 1, "flow_slug": flow, "steps": [defaults | s for s in steps]}


def declare(conn, flow_shape: dict, checksum: str | None = None) -> dict:
    return one(
        conn,
        "select * from pgflow.create_flow(%s, shape => %s, checksum => %s)",
        flow_shape["flow_slug"],
        Jsonb(flow_shape),
        checksum,
    )


def test_declared_flow_is_defining_until_its_last_step(conn):
    s = shape("f", {"step_slug": "a"}, {"step_slug": "b", "deps": ["a"]})
    assert declare(conn, s)["status"] == "defining"
    q(conn, "select pgflow.add_step('f', 'a')")
    with pytest.raises(psycopg.Error) as exc:
        start(conn, "f")
    assert sqlstate_of(exc) == "PGF06"
    assert "1 of 2 steps" in exc.value.diag.message_primary
    # re-applying the whole SQL finishes the definition
    declare(conn, s)
    q(conn, "select pgflow.add_step('f', 'a')")
    q(conn, "select pgflow.add_step('f', 'b', array['a'])")
    assert one(conn, "select status from pgflow.flows")["status"] == "ready"
    assert start(conn, "f")["status"] == "started"


def test_declared_checksum_matches_flow_checksum(conn):
    s = shape("f", {"step_slug": "a", "required_input_pattern": {"k": [1, "é"]}})
    flow = declare(conn, s)
    q(
        conn,
        "select pgflow.add_step('f', 'a', required_input_pattern => %s)",
        Jsonb({"k": [1, "é"]}),
    )
    assert one(conn, "select pgflow.flow_checksum('f') as c")["c"] == flow["checksum"]
    assert one(conn, "select pgflow.get_flow_shape('f') as s")["s"] == s


def test_add_step_must_match_the_declared_shape(conn):
    declare(conn, shape("f", {"step_slug": "a"}))
    with pytest.raises(psycopg.Error) as exc:
        q(conn, "select pgflow.add_step('f', 'zzz')")
    assert sqlstate_of(exc) == "PGF04"
    assert "'zzz'" in exc.value.diag.message_primary
    assert one(conn, "select count(*) as n from pgflow.steps")["n"] == 0


def test_changed_shape_is_refused_before_any_change(conn):
    declare(conn, shape("f", {"step_slug": "a"}))
    q(conn, "select pgflow.add_step('f', 'a')")
    old = one(conn, "select pgflow.flow_checksum('f') as c")["c"]
    with pytest.raises(psycopg.Error) as exc:
        declare(conn, shape("f", {"step_slug": "a"}, {"step_slug": "b"}))
    message = exc.value.diag.message_primary
    assert sqlstate_of(exc) == "PGF04"
    assert old in message
    assert "step 2 (b) is new" in message
    assert "'f_v2'" in exc.value.diag.message_hint
    assert one(conn, "select status, checksum from pgflow.flows")["checksum"] == old


def test_wrong_declared_checksum_is_refused(conn):
    with pytest.raises(psycopg.Error) as exc:
        declare(conn, shape("f", {"step_slug": "a"}), checksum="0" * 64)
    assert sqlstate_of(exc) == "PGF09"
    assert one(conn, "select count(*) as n from pgflow.flows")["n"] == 0


def test_same_shape_reapplied_updates_options_with_a_notice(conn):
    s = shape("f", {"step_slug": "a"})
    declare(conn, s)
    q(conn, "select pgflow.add_step('f', 'a')")
    notices: list[str] = []
    conn.add_notice_handler(lambda d: notices.append(d.message_primary or ""))
    q(conn, "select pgflow.create_flow('f', max_attempts => 7, shape => %s)", Jsonb(s))
    assert one(conn, "select opt_max_attempts from pgflow.flows")["opt_max_attempts"] == 7
    assert any("max_attempts 3 -> 7" in n for n in notices)


def test_get_flow_shape_of_unknown_flow(conn):
    with pytest.raises(psycopg.Error) as exc:
        q(conn, "select pgflow.get_flow_shape('ghost')")
    assert sqlstate_of(exc) == "PGF02"


def test_injection_attempts_are_plain_data(conn):
    evil = {"x'); drop table pgflow.flows; --": "y"}
    define(conn, "f", ("a", [], {"required_input_pattern": evil}))
    s = one(conn, "select pgflow.get_flow_shape('f') as s")["s"]
    assert s["steps"][0]["required_input_pattern"] == evil
    assert json.loads(json.dumps(s))  # round-trips
