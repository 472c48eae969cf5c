"""Golden-file tests: compiled SQL is byte-for-byte stable and parses back to the same AST.

Regenerate after an intended change (e.g. a version bump) with
``PGFLOW_REGENERATE_GOLDEN=1 pytest tests/unit/compiler/test_golden.py`` and review the diff.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import sqlglot

from pgflow._version import __version__
from pgflow.compiler import compile_flow, compile_flows
from pgflow.compiler.render import call_ast
from pgflow.loader import load_flows

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
MODULES = sorted((FIXTURES / "flows").glob("*.py"))


def golden_path(module: Path) -> Path:
    return FIXTURES / "compiled" / f"{module.stem}.sql"


@pytest.mark.parametrize("module", MODULES, ids=lambda p: p.stem)
def test_compiled_sql_equals_the_golden_file_byte_for_byte(module: Path) -> None:
    sql = compile_flows(load_flows(str(module)))
    golden = golden_path(module)
    if os.environ.get("PGFLOW_REGENERATE_GOLDEN"):
        golden.write_bytes(sql.encode("utf-8"))
    assert sql.encode("utf-8") == golden.read_bytes()


@pytest.mark.parametrize("module", MODULES, ids=lambda p: p.stem)
def test_golden_sql_parses_back_to_the_compiled_statements(module: Path) -> None:
    calls = [call for flow in load_flows(str(module)) for call in compile_flow(flow).calls]
    parsed = sqlglot.parse(golden_path(module).read_text(encoding="utf-8"), read="postgres")
    assert [statement for statement in parsed if statement is not None] == [
        call_ast(call) for call in calls
    ]


def test_header_names_slug_checksum_and_generator_version() -> None:
    (flow,) = load_flows(str(FIXTURES / "flows" / "minimal.py"))
    compiled = compile_flow(flow)
    assert compiled.sql.splitlines()[:3] == [
        "-- pgflow flow: minimal",
        f"-- checksum: {compiled.checksum}",
        f"-- generator: pgflow-py {__version__}",
    ]
    assert compiled.checksum == compiled.shape.checksum


@pytest.mark.parametrize("seed", ["0", "4242"])
def test_compiling_in_a_fresh_process_with_another_hash_seed_gives_identical_bytes(
    seed: str,
) -> None:
    module = FIXTURES / "flows" / "fan_out.py"
    result = subprocess.run(
        [sys.executable, "-c", "from pgflow.cli import main; main()", "compile", str(module)],
        capture_output=True,
        env={**os.environ, "PYTHONHASHSEED": seed},
        check=True,
    )
    assert result.stdout == golden_path(module).read_bytes()


def test_options_equal_to_sql_defaults_are_omitted_and_others_are_named() -> None:
    (flow,) = load_flows(str(FIXTURES / "flows" / "analyze_website.py"))
    create, *steps = compile_flow(flow).calls
    assert [name for name, _ in create.kwargs] == [
        "base_delay",
        "input_schema",
        "shape",
        "checksum",
    ]
    assert [name for name, _ in steps[0].kwargs] == []
    assert [name for name, _ in steps[2].kwargs] == ["deps_slugs", "timeout"]
