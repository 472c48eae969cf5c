"""Python and Postgres agree: canonical JSON text, checksums, slug rules.

Property-based (hypothesis): generated JSON values, numbers and whole flow shapes (with
nasty patterns: Unicode, escapes, quotes, big and small numbers, nesting) are rendered by
Python offline and by Postgres from the definition tables after applying the compiled SQL.
"""

from __future__ import annotations

import itertools
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pgflow import Flow
from pgflow.cli import main
from pgflow.compiler import compile_flow
from pgflow.dsl.slugs import RESERVED_SLUGS, is_valid_slug
from pgflow.loader import load_flows
from pgflow.shape import canonical_json, shape_of

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
DB_SETTINGS = settings(
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

texts = st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\x00"), max_size=12)
nasty_texts = texts | st.sampled_from(
    ["'); drop table x; --", "\\", '"', "$$", "\b\f\n\r\t\x01\x1f\x7f", "żółć 🎉 日本", "\u2028"]
)
scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**40), max_value=10**40)
    | st.floats(allow_nan=False, allow_infinity=False)
    | nasty_texts
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(nasty_texts, inner, max_size=4),
    max_leaves=16,
)
objects = st.dictionaries(nasty_texts, json_values, max_size=4)
numeric_texts = st.from_regex(
    r"-?(0|[1-9][0-9]{0,25})(\.[0-9]{1,25})?([eE][+-]?[0-9]{1,2})?", fullmatch=True
)
slugs = st.from_regex(r"[a-z]([a-z0-9_]{0,14}[a-z0-9])?", fullmatch=True).filter(
    lambda s: s not in RESERVED_SLUGS
)
any_slugs = st.from_regex(r"[a-zA-Z_][a-zA-Z0-9_]{0,15}", fullmatch=True)
modes = st.sampled_from(["skip", "skip-cascade", "fail"])
flow_numbers = itertools.count()


def pg_text(conn: psycopg.Connection[Any], json_text: str) -> str:
    row = conn.execute("select %s::jsonb::text as t", [json_text]).fetchone()
    assert row is not None
    return str(row["t"])  # type: ignore[call-overload]


@DB_SETTINGS
@given(value=json_values)
def test_canonical_json_equals_postgres_jsonb_text(
    conn: psycopg.Connection[Any], value: Any
) -> None:
    assert canonical_json(value) == pg_text(conn, json.dumps(value))


@DB_SETTINGS
@given(number=numeric_texts)
def test_numbers_print_as_postgres_numeric_prints_them(
    conn: psycopg.Connection[Any], number: str
) -> None:
    assert canonical_json(Decimal(number)) == pg_text(conn, number)
    assert canonical_json(json.loads(number)) == pg_text(conn, json.dumps(json.loads(number)))


@st.composite
def flows(draw: st.DrawFn) -> Flow:
    """A random valid flow: a DAG in definition order, maps, conditions and modes."""
    step_slugs = draw(st.lists(slugs, min_size=1, max_size=6, unique=True))
    flow = Flow(f"{draw(slugs)[:80]}_{next(flow_numbers)}")
    for index, slug in enumerate(step_slugs):
        deps = draw(st.lists(st.sampled_from(step_slugs[:index]), unique=True)) if index else []
        is_map = len(deps) <= 1 and draw(st.booleans())
        keys = st.sampled_from(deps) if deps and not is_map else nasty_texts
        condition = st.none() | st.dictionaries(keys, json_values, max_size=3)
        options: dict[str, Any] = {
            "if_": draw(condition),
            "if_not": draw(condition),
            "when_exhausted": draw(modes),
        }
        if options["if_"] is not None or options["if_not"] is not None:
            options["when_unmet"] = draw(modes)  # refused without a condition, as pgflow does
        if is_map:
            flow.map(slug, lambda item, **_: item, array=deps[0] if deps else None, **options)
        else:
            flow.step(slug, lambda **_: None, depends_on=deps, **options)
    return flow


@DB_SETTINGS
@given(flow=flows())
def test_compiled_sql_defines_the_same_shape_and_checksum_in_postgres(
    conn: psycopg.Connection[Any], flow: Flow
) -> None:
    compiled = compile_flow(flow)
    conn.execute(compiled.sql)
    try:
        row = conn.execute(
            "select pgflow.flow_checksum(%(s)s) as checksum, "
            "pgflow.get_flow_shape(%(s)s)::text as shape",
            {"s": flow.slug},
        ).fetchone()
    finally:
        conn.execute("select pgflow.delete_flow_and_data(%s)", [flow.slug])
    assert row is not None
    assert row["shape"] == shape_of(flow).canonical  # type: ignore[call-overload]
    assert row["checksum"] == compiled.checksum  # type: ignore[call-overload]


@DB_SETTINGS
@given(candidate=st.text(max_size=140).filter(lambda s: "\x00" not in s) | any_slugs)
def test_slug_rules_agree_with_the_sql_check_for_new_slugs(
    conn: psycopg.Connection[Any], candidate: str
) -> None:
    try:
        with conn.transaction():
            conn.execute("select pgflow._check_slug('flow', %s)", [candidate])
        accepted = True
    except psycopg.Error as exc:
        assert exc.sqlstate == "PGF01"
        accepted = False
    assert is_valid_slug(candidate) is accepted
    # the storage rule (table constraints) accepts all of them, and older `_x` slugs too
    row = conn.execute("select pgflow.is_valid_slug(%s) as ok", [candidate]).fetchone()
    assert row is not None
    if accepted:
        assert row["ok"] is True  # type: ignore[call-overload]


@pytest.mark.parametrize("module", sorted((FIXTURES / "flows").glob("*.py")), ids=lambda p: p.stem)
def test_golden_sql_applies_twice_and_sql_checksum_equals_the_header(
    conn: psycopg.Connection[Any], module: Path
) -> None:
    sql = (FIXTURES / "compiled" / f"{module.stem}.sql").read_text(encoding="utf-8")
    conn.execute(sql)
    conn.execute(sql)  # the same shape again: a no-op
    for flow in load_flows(str(module)):
        row = conn.execute("select pgflow.flow_checksum(%s) as checksum", [flow.slug]).fetchone()
        assert row is not None
        assert f"-- checksum: {row['checksum']}" in sql  # type: ignore[call-overload]


def test_a_changed_shape_is_refused_before_anything_changes(conn: psycopg.Connection[Any]) -> None:
    first = Flow("orders").step("a", lambda: 1).step("b", lambda **_: 2, depends_on=["a"])
    changed = Flow("orders").step("a", lambda: 1).step("b", lambda: 2)
    conn.execute(compile_flow(first).sql)
    with pytest.raises(psycopg.Error) as caught:
        conn.execute(compile_flow(changed).sql)
    message = str(caught.value)
    assert "orders" in message
    assert compile_flow(first).checksum in message and compile_flow(changed).checksum in message
    row = conn.execute("select pgflow.flow_checksum('orders') as checksum").fetchone()
    assert row is not None
    assert row["checksum"] == compile_flow(first).checksum  # type: ignore[call-overload]


def test_check_compares_deployed_shapes_using_flow_checksum(
    conn: psycopg.Connection[Any], db_url: str, tmp_path: Path
) -> None:
    website = FIXTURES / "flows" / "analyze_website.py"
    run = CliRunner().invoke
    fresh = run(main, ["check", str(website), "--database-url", db_url])
    assert fresh.exit_code == 0, fresh.output
    assert "schema: version" in fresh.stdout
    assert "--   flow 'analyze_website': not deployed" in fresh.stdout

    conn.execute((FIXTURES / "compiled" / "analyze_website.sql").read_text("utf-8"))
    deployed = run(main, ["check", str(website), "--database-url", db_url])
    assert deployed.exit_code == 0
    assert "ok   flow 'analyze_website': deployed shape matches" in deployed.stdout

    changed = tmp_path / "changed.py"
    changed.write_text(
        website.read_text("utf-8").replace(
            '@flow.step(depends_on=["website"], timeout=30)',
            '@flow.step(depends_on=["website"], if_={"website": {}}, when_unmet="fail")',
        ),
        encoding="utf-8",
    )
    refused = run(main, ["check", str(changed), "--database-url", db_url])
    assert refused.exit_code == 1
    assert "FAIL flow 'analyze_website': the deployed shape differs" in refused.stdout
    assert 'required_input_pattern is null in the database and {"website": {}} in the code' in (
        refused.stdout
    )
    assert "analyze_website_v2" in refused.stdout


def test_check_reports_a_database_without_the_pgflow_schema(empty_db_url: str) -> None:
    website = FIXTURES / "flows" / "analyze_website.py"
    result = CliRunner().invoke(main, ["check", str(website), "--database-url", empty_db_url])
    assert result.exit_code == 1
    assert "FAIL schema: pgflow is not installed" in result.stdout
    assert "pgflow install" in result.stderr
