"""The import layers of the package (docs/contributing.md draws the same map).

A module may import from its own layer or a lower one, never from a higher one. Imports
under ``if TYPE_CHECKING:`` are type annotations only and do not count. The test fails
naming each import that runs up the layers, so a new module is placed in :data:`LAYERS`
when it is added.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "pgflow"

# Lowest first. A name is a top-level module or subpackage of pgflow.
LAYERS: list[set[str]] = [
    {
        "errors",
        "_version",
        "_words",
        "_json",
        "_duration",
        "_input_schema",
    },  # foundations: no pgflow imports at run time
    {"dsl", "models", "run_ids", "sql", "migrations", "_decode"},  # definitions, values, SQL
    {"shape", "db", "blobs"},  # shapes; connections, installer, errors; values by reference
    {
        "compiler",
        "_client_base",
        "_client_values",
        "_client_watch",
        "client",
        "manifest",
        "retention",
        "telemetry",
    },  # the client
    {
        "worker",
        "deploy",
        "deploy_sql",
        "doctor",
        "loader",
        "testing",
        "schedules",
        "sharding",
    },  # run/ship
    {"cli", "contrib", "ui"},  # user interfaces: the command line, Alembic, the run viewer
    {"__init__"},  # the public API re-exports everything
]


def layer_of(unit: str) -> int:
    """The layer of a top-level unit of the package."""
    for index, names in enumerate(LAYERS):
        if unit in names:
            return index
    raise AssertionError(
        f"pgflow.{unit} is not placed in a layer: add it to LAYERS in {Path(__file__).name} "
        "and to the map in docs/contributing.md"
    )


def unit_of(module: str) -> str:
    """``pgflow.db.errors`` -> ``db``; ``pgflow`` -> ``__init__``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _type_checking_only(tree: ast.Module) -> set[int]:
    """Line numbers of imports inside ``if TYPE_CHECKING:`` blocks."""
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.body:
                lines.update(range(child.lineno, (child.end_lineno or child.lineno) + 1))
    return lines


def imported_modules(source: str) -> list[tuple[int, str]]:
    """``(line, module)`` of every run-time import of a pgflow module in ``source``."""
    tree = ast.parse(source)
    skipped = _type_checking_only(tree)
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Import | ast.ImportFrom) or node.lineno in skipped:
            continue
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "pgflow":
                found += [(node.lineno, f"pgflow.{alias.name}") for alias in node.names]
            elif node.module.startswith("pgflow."):
                found.append((node.lineno, node.module))
        elif isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.split(".")[0] == "pgflow"]
    return found


def violations(package: Path) -> list[str]:
    """Every import of a higher layer, as ``file:line: pgflow.x (layer n) imports ...``."""
    problems = []
    for path in sorted(package.rglob("*.py")):
        relative = path.relative_to(package.parent)
        unit = unit_of(".".join(relative.with_suffix("").parts))
        if path.name == "__init__.py" and path.parent == package:
            unit = "__init__"
        own = layer_of(unit)
        for line, module in imported_modules(path.read_text(encoding="utf-8")):
            target = unit_of(module)
            if target != unit and layer_of(target) > own:
                problems.append(
                    f"{relative}:{line}: pgflow.{unit} (layer {own}) imports {module} "
                    f"(layer {layer_of(target)})"
                )
    return problems


def test_no_module_imports_a_higher_layer() -> None:
    assert violations(PACKAGE) == []


def test_an_upward_import_is_reported_with_file_and_line(tmp_path: Path) -> None:
    package = tmp_path / "pgflow"
    (package / "dsl").mkdir(parents=True)
    (package / "dsl" / "flow.py").write_text(
        "from __future__ import annotations\n"
        "from typing import TYPE_CHECKING\n"
        "from pgflow.errors import PgflowError\n"
        "if TYPE_CHECKING:\n"
        "    from pgflow.worker import Worker\n"
        "from pgflow.client import Client\n"
    )
    assert violations(package) == [
        "pgflow/dsl/flow.py:6: pgflow.dsl (layer 1) imports pgflow.client (layer 3)"
    ]


def test_a_module_outside_the_map_must_be_placed() -> None:
    with pytest.raises(AssertionError, match="not placed in a layer"):
        layer_of("newthing")
