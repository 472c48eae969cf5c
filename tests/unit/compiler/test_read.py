"""Reading earlier migration files back: shapes per slug, robust to unrelated SQL."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from pgflow.compiler import compile_flow
from pgflow.compiler.read import read_defined_flows, read_file_calls
from pgflow.errors import CompileError
from pgflow.loader import load_flows
from pgflow.shape import FlowShape, StepShape

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"

MIXED = """\
BEGIN;
create table users (id int primary key, note text default 'it''s; pgflow.add_step(');
-- a comment mentioning pgflow.add_step( is not a call
/* neither /* is */ pgflow.create_flow( */
create function app.f() returns int language sql security definer as $$ select 1; $$;
SELECT * FROM pgflow.create_flow('legacy', max_attempts := 5);
SELECT pgflow.add_step('legacy', 'a');
SELECT PGFLOW.ADD_STEP('legacy', 'b', ARRAY['a']::text[], step_type => 'map');
select pgflow.add_step('legacy', 'c', '{a,b}',
  required_input_pattern => '{"a": 1.50, "b": "x\\"y"}'::jsonb, when_unmet => 'fail');
COMMIT;
"""


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def test_calls_are_read_in_both_positions_with_both_named_argument_syntaxes(
    tmp_path: Path,
) -> None:
    calls = read_file_calls(write(tmp_path, "0001.sql", MIXED))
    assert [(c.function, c.line) for c in calls] == [
        ("create_flow", 6),
        ("add_step", 7),
        ("add_step", 8),
        ("add_step", 9),
    ]
    assert calls[0].arguments == {"flow_slug": "legacy", "max_attempts": 5}
    assert calls[2].arguments["deps_slugs"] == ["a"]
    assert calls[3].arguments["required_input_pattern"] == '{"a": 1.50, "b": "x\\"y"}'


def test_a_flow_without_declared_shape_is_rebuilt_from_its_add_step_calls(tmp_path: Path) -> None:
    write(tmp_path, "0001.sql", MIXED)
    legacy = read_defined_flows(tmp_path)["legacy"]
    assert legacy.shape == FlowShape(
        flow_slug="legacy",
        steps=(
            StepShape(step_slug="a"),
            StepShape(step_slug="b", deps=("a",), step_type="map"),
            StepShape(
                step_slug="c",
                deps=("a", "b"),
                required_input_pattern={"a": Decimal("1.50"), "b": 'x"y'},
                when_unmet="fail",
            ),
        ),
    )
    assert '"a": 1.50' in legacy.shape.canonical  # numbers keep their Postgres text
    assert (legacy.path, legacy.line) == (str(tmp_path / "0001.sql"), 6)


def test_compiled_files_are_read_back_with_their_declared_shape_and_checksum(
    tmp_path: Path,
) -> None:
    flows = load_flows(str(FIXTURES / "flows" / "fan_out.py"))
    write(tmp_path, "0002.sql", (FIXTURES / "compiled" / "fan_out.sql").read_text("utf-8"))
    defined = read_defined_flows(tmp_path)
    assert {slug: d.checksum for slug, d in defined.items()} == {
        flow.slug: compile_flow(flow).checksum for flow in flows
    }


def test_nasty_literals_survive_the_round_trip(tmp_path: Path) -> None:
    (flow,) = load_flows(str(FIXTURES / "flows" / "nasty_literals.py"))
    write(tmp_path, "0001.sql", compile_flow(flow).sql)
    assert read_defined_flows(tmp_path)["nasty_literals"].checksum == compile_flow(flow).checksum


def test_files_are_read_in_name_order_and_delete_forgets_a_slug(tmp_path: Path) -> None:
    write(tmp_path, "0002_b.sql", "select pgflow.delete_flow_and_data('gone');")
    write(
        tmp_path,
        "0001_a.sql",
        "select pgflow.create_flow('gone'); select pgflow.create_flow('kept');",
    )
    write(tmp_path, "notes.txt", "select pgflow.create_flow('ignored');")
    assert set(read_defined_flows(tmp_path)) == {"kept"}


def test_reapplying_a_definition_keeps_the_first_one(tmp_path: Path) -> None:
    step = "select pgflow.add_step('f', 'a');"
    write(tmp_path, "0001.sql", f"select pgflow.create_flow('f'); {step}")
    write(tmp_path, "0002.sql", f"select pgflow.create_flow('f', timeout => 9); {step}")
    defined = read_defined_flows(tmp_path)["f"]
    assert defined.path.endswith("0001.sql")
    assert [s.step_slug for s in defined.shape.steps] == ["a"]


@pytest.mark.parametrize(
    ("sql", "line", "why"),
    [
        ("select 1;\nDO $$ begin perform pgflow.add_step('f', 'a'); end $$;", 2, "DO block"),
        (
            (
                "create function g() returns void language plpgsql as $$\nbegin\n"
                "  perform pgflow.create_flow('f');\nend $$;"
            ),
            3,
            "",
        ),
        ("select pgflow.add_step('f', lower('A'));", 1, "not a literal"),
        ("select pgflow.add_step('f', 'a', bogus => 1);", 1, "unknown parameter"),
        ("select pgflow.add_step(flow_slug => 'f', flow_slug => 'g');", 1, "given twice"),
        ("select pgflow.add_step('f', 'a', deps_slugs => 42);", 1, "text array"),
        (
            "select pgflow.add_step('f', 'a', required_input_pattern => '{oops');",
            1,
            "not valid JSON",
        ),
        ("select pgflow.create_flow('f', shape => '{\"steps\": 1}');", 1, "steps"),
        ("select pgflow.add_step('f' 'a' ));", 1, "could not parse"),
    ],
)
def test_a_call_that_cannot_be_read_is_refused_with_file_and_line(
    tmp_path: Path, sql: str, line: int, why: str
) -> None:
    path = write(tmp_path, "0007_bad.sql", sql)
    with pytest.raises(CompileError) as caught:
        read_defined_flows(tmp_path)
    assert f"{path} line {line}" in caught.value.message
    assert why in caught.value.message
    assert caught.value.line == line


def test_an_undecodable_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "0001.sql").write_bytes(b"select '\xff';")
    with pytest.raises(CompileError, match="cannot read"):
        read_defined_flows(tmp_path)
