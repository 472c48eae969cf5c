"""Every ```python block of docs/dsl.md runs, in order, in one namespace."""

from __future__ import annotations

import re
import sys
import types
from pathlib import Path

import pytest

from pgflow.compiler import compile_flow

DOC = Path(__file__).resolve().parents[3] / "docs" / "dsl.md"
BLOCKS = re.findall(
    r"^```python\n(.*?)^```", DOC.read_text(encoding="utf-8"), re.MULTILINE | re.DOTALL
)


def test_the_guide_has_examples() -> None:
    assert len(BLOCKS) >= 10


def test_every_example_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    module = types.ModuleType("pgflow_docs_dsl")
    monkeypatch.setitem(sys.modules, module.__name__, module)  # pydantic resolves names here
    for index, block in enumerate(BLOCKS):
        code = compile(block, f"{DOC.name} example {index + 1}", "exec")
        exec(code, module.__dict__)  # noqa: S102 - running our own documentation


def test_the_compiled_example_matches_the_sql_shown(monkeypatch: pytest.MonkeyPatch) -> None:
    module = types.ModuleType("pgflow_docs_dsl")
    monkeypatch.setitem(sys.modules, module.__name__, module)
    for block in BLOCKS[:2]:
        exec(compile(block, DOC.name, "exec"), module.__dict__)  # noqa: S102 - our docs
    sql = compile_flow(module.__dict__["pipeline"]).sql
    shown = re.search(r"^```sql\n(.*?)^```", DOC.read_text("utf-8"), re.MULTILINE | re.DOTALL)
    assert shown is not None
    statements = [line for line in sql.splitlines() if "add_step" in line]
    assert statements == [line for line in shown.group(1).splitlines() if "add_step" in line]
