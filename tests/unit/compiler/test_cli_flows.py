"""``pgflow compile``, ``graph`` and ``check --offline`` from the command line (no database)."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from pgflow.cli import main

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
WEBSITE = FIXTURES / "flows" / "analyze_website.py"


def run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


def write(folder: Path, name: str, source: str) -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(source), encoding="utf-8")
    return path


def assert_user_error(result: Result, *parts: str) -> None:
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output + result.stderr
    assert result.stderr.startswith("Error: ")
    assert "Hint: " in result.stderr
    for part in parts:
        assert part in result.stderr, f"{part!r} not in {result.stderr!r}"


@pytest.mark.parametrize("command", ["compile", "check", "graph"])
def test_every_command_has_help(command: str) -> None:
    result = run(command, "--help")
    assert result.exit_code == 0 and "FLOWS" in result.output


def test_compile_prints_the_golden_sql_to_stdout() -> None:
    result = run("compile", str(WEBSITE))
    assert result.exit_code == 0
    assert result.stdout == (FIXTURES / "compiled" / "analyze_website.sql").read_text("utf-8")


def test_compile_with_attr_compiles_only_that_flow() -> None:
    result = run("compile", f"{FIXTURES / 'flows' / 'fan_out.py'}:numbers")
    assert result.exit_code == 0
    assert "-- pgflow flow: double_numbers" in result.stdout
    assert "fan_out" not in result.stdout


def test_compile_into_a_folder_writes_then_skips_then_refuses_a_change(tmp_path: Path) -> None:
    folder = tmp_path / "migrations"
    first = run("compile", str(WEBSITE), "-o", str(folder))
    assert first.exit_code == 0
    (written,) = folder.iterdir()
    assert first.stdout == f"wrote {written}\n"
    assert written.name.endswith("_create_analyze_website.sql") and re.fullmatch(
        r"\d{14}_create_analyze_website\.sql", written.name
    )

    again = run("compile", str(WEBSITE), "--output", str(folder))
    assert again.exit_code == 0
    assert "already defined with the same shape in" in again.stdout and str(written) in again.stdout

    changed = write(
        tmp_path,
        "changed.py",
        WEBSITE.read_text("utf-8")
        .replace('depends_on=["sentiment", "summary"]', 'depends_on=["summary"]')
        .replace("input: Input, sentiment: float, summary: str", "input: Input, summary: str"),
    )
    refused = run("compile", str(changed), "-o", str(folder))
    assert_user_error(refused, "analyze_website", str(written), "analyze_website_v2")
    assert len(list(folder.iterdir())) == 1


BAD_DEFINITIONS = {
    "slug injection": ('Flow("x\'); drop table pgflow.flows; --")', "invalid flow slug"),
    "reserved slug": ('Flow("ok").step("run", lambda: 1)', "reserved word"),
    "duplicate": ('Flow("ok").step("a", lambda: 1).step("a", lambda: 2)', "already defined"),
    "unknown dep": ('Flow("ok").step("a", lambda b: 1, depends_on=["b"])', "depends on 'b'"),
    "binds nothing": ('Flow("ok").step("a", lambda nothing: 1)', "binds nothing"),
    "option": ('Flow("ok", timeout=0)', "option timeout=0 is out of range"),
    "pattern": ('Flow("ok").step("a", lambda: 1, if_=["x"])', "must be a JSON object"),
    "mode": ('Flow("ok").step("a", lambda: 1, when_unmet="never")', "is not a valid mode"),
    "map deps": (
        (
            'Flow("ok").array("a", lambda: []).array("b", lambda: []).map("m", lambda x: x, '
            'array="a", depends_on=["b"])'
        ),
        "at most one dependency",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_DEFINITIONS))
@pytest.mark.parametrize("command", ["compile", "graph"])
def test_bad_definitions_exit_1_with_file_flow_step_and_hint(
    tmp_path: Path, case: str, command: str
) -> None:
    source, problem = BAD_DEFINITIONS[case]
    path = write(tmp_path, "bad.py", f"from pgflow import Flow\nflow = {source}\n")
    assert_user_error(run(command, str(path)), f"{path}:2:", problem)


def test_a_type_mismatch_across_an_edge_exits_1(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "types.py",
        """
        from pgflow import Flow
        def produce() -> str:
            return "x"
        def consume(produce: int) -> int:
            return produce
        flow = Flow("typed").step("produce", produce)
        flow.step("consume", consume, depends_on=["produce"])
        """,
    )
    assert_user_error(
        run("check", str(path), "--offline"), "parameter 'produce: int'", "step 'consume'"
    )


def test_missing_file_and_module_without_flows_exit_1(tmp_path: Path) -> None:
    assert_user_error(run("compile", str(tmp_path / "missing.py")), "no such file")
    empty = write(tmp_path, "empty.py", "x = 1\n")
    assert_user_error(run("compile", str(empty)), "defines no pgflow.Flow")


def test_an_import_error_in_user_code_exits_1_with_the_users_traceback(tmp_path: Path) -> None:
    path = write(tmp_path, "broken.py", "import json\nraise RuntimeError('no config')\n")
    result = run("compile", str(path))
    assert result.exit_code == 1
    assert f'File "{path}", line 2, in <module>' in result.stderr
    assert "RuntimeError: no config" in result.stderr
    assert "pgflow/loader.py" not in result.stderr


def test_graph_mermaid_and_dot() -> None:
    mermaid = run("graph", str(WEBSITE))
    assert mermaid.exit_code == 0
    assert mermaid.stdout.splitlines()[:3] == [
        "flowchart TD",
        "  %% pgflow flow: analyze_website",
        '  s_website["website"]',
    ]
    assert "  s_sentiment --> s_save" in mermaid.stdout
    dot = run("graph", str(FIXTURES / "flows" / "fan_out.py"), "--format", "dot")
    assert dot.exit_code == 0
    assert 'digraph "fan_out" {' in dot.stdout and 'digraph "double_numbers" {' in dot.stdout
    assert '"sizes" [label="sizes (map)", peripheries=2];' in dot.stdout
    assert '"total" [label="total (if, skip-cascade)"];' in dot.stdout
    assert '"report" [label="report (if_not, fail)"];' in dot.stdout  # not "(if, fail)"
    assert '"urls" -> "sizes";' in dot.stdout


def test_graph_refuses_an_unknown_format() -> None:
    assert run("graph", str(WEBSITE), "--format", "png").exit_code == 2


def test_check_offline_reports_each_flow() -> None:
    result = run("check", str(FIXTURES / "flows" / "fan_out.py"), "--offline")
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[0].startswith(
        "ok   flow 'fan_out': 4 steps, definitions and types across edges ok"
    )
    assert lines[1].startswith("ok   flow 'double_numbers': 1 step,")


def test_check_reports_an_unreachable_database_as_a_problem() -> None:
    result = run("check", str(WEBSITE), "--database-url", "postgresql://nobody@127.0.0.1:1/none")
    assert_user_error(result, "check found 1 problem(s)")
    assert "FAIL database: could not connect" in result.stdout
