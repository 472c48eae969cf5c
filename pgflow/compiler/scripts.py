"""Read compiled pgflow SQL files for ``pgflow deploy FILE.sql`` and ``pgflow deploy DIR``.

A compiled file (``pgflow compile``, or pgflow's TypeScript compiler) holds only
``pgflow.create_flow`` / ``pgflow.add_step`` calls, then ``pgflow.set_limits`` and
``pgflow.set_schedules`` for a flow with limits or schedules, possibly wrapped in
``BEGIN`` / ``COMMIT``. Anything else (other SQL, ``pgflow.delete_flow_and_data``, no
call at all) means the file is not one, and nothing is applied: run such files with your
migration tool. A folder is read in file-name order
(migration order); it must define at least one flow, and two files must not define one slug
with different shapes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from pgflow.compiler.defined import DefinedFlow, FlowCollector
from pgflow.compiler.read import FoundCall, read_file_calls
from pgflow.compiler.sqlscan import split_statements
from pgflow.errors import CompileError, FlowLoadError

__all__ = ["CompiledScript", "is_sql_reference", "read_compiled"]

_TRANSACTION = re.compile(
    r"(begin|commit|end|start\s+transaction)(\s+(work|transaction))?", re.IGNORECASE
)
# What `pgflow compile` writes after the steps of a flow with limits or schedules (runtime
# configuration: it defines no shape, so the flow readers skip it).
_RUNTIME = re.compile(r'select\s+"?pgflow"?\s*\.\s*"?set_(schedules|limits)"?\s*\(', re.IGNORECASE)
_HINT = (
    "pass SQL written by `pgflow compile FLOWS -o DIR` (or by pgflow's TypeScript compiler); "
    "apply other SQL with your migration tool"
)


@dataclass(frozen=True, slots=True)
class CompiledScript:
    """One compiled file.

    Attributes:
        path: the file.
        statements: its pgflow calls, as SQL statements to execute in order.
        flows: the flows it defines, by slug.
    """

    path: Path
    statements: tuple[str, ...]
    flows: dict[str, DefinedFlow]


def is_sql_reference(reference: str) -> bool:
    """Whether a FLOWS argument names compiled SQL: a ``.sql`` file or a folder."""
    return reference.lower().endswith(".sql") or Path(reference).is_dir()


def read_compiled(reference: str) -> list[CompiledScript]:
    """Read a ``.sql`` file, or every ``*.sql`` file of a folder in name order.

    Raises:
        FlowLoadError: the file does not exist or is not compiled pgflow SQL, or the folder
            defines no flow; nothing has been applied.
        CompileError: a pgflow call cannot be read, or two files give a slug two shapes.
    """
    path = Path(reference)
    if path.is_dir():
        scripts = [_read(p) for p in sorted(path.glob("*.sql"))]
        if not scripts:
            raise FlowLoadError(
                f"the folder {path} holds no .sql file, so no flow to deploy", hint=_HINT
            )
    elif path.is_file():
        scripts = [_read(path)]
    else:
        raise FlowLoadError(f"no such file or folder: {path}", hint=_HINT)
    _check_agree(scripts)
    return scripts


def _read(path: Path) -> CompiledScript:
    calls = read_file_calls(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise FlowLoadError(f"cannot read {path}: {exc}", hint=_HINT) from exc
    statements = split_statements(text)
    ends = [s.line for s in statements[1:]] + [text.count("\n") + 2][: len(statements)]
    kept: list[str] = []
    for statement, end in zip(statements, ends, strict=True):
        inside = [c for c in calls if statement.line <= c.line < end]
        if inside or _RUNTIME.match(statement.code.strip()):
            kept.append(statement.code)
        elif not _TRANSACTION.fullmatch(statement.code.strip()):
            first = statement.code.strip().splitlines()[0][:60]
            raise FlowLoadError(
                f"{path} is not compiled pgflow SQL: line {statement.line} ({first!r}) is not "
                "a pgflow.create_flow, pgflow.add_step, pgflow.set_limits or "
                "pgflow.set_schedules call",
                hint=_HINT,
            )
    return CompiledScript(path, tuple(kept), _flows(path, calls))


def _flows(path: Path, calls: list[FoundCall]) -> dict[str, DefinedFlow]:
    collector = FlowCollector()
    for call in calls:
        if call.function == "delete_flow_and_data":
            raise FlowLoadError(
                f"{path} line {call.line} deletes a flow: `pgflow deploy` never deletes flows",
                hint="run that file with your migration tool, or delete the flow with "
                "`select pgflow.delete_flow_and_data('slug')`",
            )
        collector.add(call)
    flows = collector.flows()
    if not flows:
        raise FlowLoadError(f"{path} is not compiled pgflow SQL: it defines no flow", hint=_HINT)
    return flows


def _check_agree(scripts: list[CompiledScript]) -> None:
    seen: dict[str, DefinedFlow] = {}
    for script in scripts:
        for slug, flow in script.flows.items():
            earlier = seen.setdefault(slug, flow)
            if earlier.checksum != flow.checksum:
                raise CompileError(
                    f"flow {slug!r} is defined with one shape in {earlier.path} (checksum "
                    f"{earlier.checksum}) and another in {flow.path} (checksum {flow.checksum})",
                    hint="flows are immutable: give the changed flow a new slug (x_v2)",
                    flow_slug=slug,
                    path=flow.path,
                )
