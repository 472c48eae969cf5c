"""Read, offline, which flows the earlier revisions of an Alembic project define.

A revision file is parsed with :mod:`ast`, never run for this. Its pgflow SQL is found in:

- ``PGFLOW_FLOWS = {slug: sql, ...}``: flows its upgrade applies (``pgflow alembic
  revision`` writes this);
- ``PGFLOW_RETIRED = {slug: sql, ...}``: flows its upgrade removes (``pgflow alembic
  retire``);
- calls inside ``upgrade()``: ``op.pgflow_apply_flow(sql, slug)``,
  ``op.pgflow_remove_flow(slug)`` and ``op.execute(sql)``, with literal arguments or
  module-level constants (autogenerate writes the first form).

The SQL, in revision order, then goes through the compiler's reader
(:func:`pgflow.compiler.read.read_defined_flows`), which knows what each
``create_flow`` / ``add_step`` / ``delete_flow_and_data`` call means.
"""

from __future__ import annotations

import ast
import re
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pgflow.compiler.read import DefinedFlow, read_defined_flows
from pgflow.contrib.alembic.ops import render_query
from pgflow.errors import CompileError

__all__ = ["EarlierFlow", "SqlChunk", "defined_flows", "read_revision"]

_PGFLOW_SQL = re.compile(r'"?pgflow"?\s*\.\s*"?(create_flow|add_step|delete_flow_and_data)')
_OPS = {"pgflow_apply_flow", "pgflow_remove_flow", "execute"}


@dataclass(frozen=True, slots=True)
class SqlChunk:
    """A piece of pgflow SQL an upgrade runs, and where it is written."""

    sql: str
    path: Path
    line: int


@dataclass(frozen=True, slots=True)
class EarlierFlow:
    """A flow defined by an earlier revision: its definition and the SQL that made it."""

    defined: DefinedFlow
    chunk: SqlChunk

    @property
    def where(self) -> str:
        """``path line N``: where the defining SQL is written."""
        return f"{self.chunk.path} line {self.chunk.line}"


def read_revision(path: Path) -> list[SqlChunk]:
    """Return the pgflow SQL a revision file's upgrade runs, in order.

    Raises:
        CompileError: the file cannot be parsed, or a pgflow call in ``upgrade()`` has
            arguments that are neither literals nor module-level constants.
    """
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    except (OSError, SyntaxError, UnicodeDecodeError) as exc:
        raise CompileError(f"cannot read revision {path}: {exc}", path=str(path)) from exc
    constants = _constants(tree)
    chunks = [SqlChunk(sql, path, line) for sql, line in _declared(tree, constants)]
    upgrade = next(
        (n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "upgrade"), None
    )
    if upgrade is not None:
        convention = "PGFLOW_FLOWS" in constants or "PGFLOW_RETIRED" in constants
        chunks += [SqlChunk(s, path, n) for s, n in _calls(upgrade, constants, path, convention)]
    return chunks


def defined_flows(paths: Sequence[Path]) -> dict[str, EarlierFlow]:
    """Return the flows that the revision files ``paths`` (oldest first) leave defined.

    Raises:
        CompileError: a file or a pgflow call in it cannot be read (the message names it).
    """
    chunks = [chunk for path in paths for chunk in read_revision(path)]
    with tempfile.TemporaryDirectory(prefix="pgflow-alembic-") as tmp:
        names = {}
        for index, chunk in enumerate(chunks):
            file = Path(tmp) / f"{index:06d}.sql"
            file.write_text(chunk.sql, encoding="utf-8")
            names[str(file)] = chunk
        try:
            found = read_defined_flows(Path(tmp))
        except CompileError as exc:
            raise _relocated(exc, names) from exc.__cause__
    return {slug: EarlierFlow(flow, names[flow.path]) for slug, flow in found.items()}


def _relocated(exc: CompileError, names: dict[str, SqlChunk]) -> CompileError:
    """The compiler names a temporary file; name the revision file instead."""
    message = exc.message
    for name, chunk in names.items():
        message = message.replace(name, f"{chunk.path} (SQL of line {chunk.line})")
    return CompileError(message, hint=exc.hint)


def _constants(tree: ast.Module) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else []
        if isinstance(node, ast.AnnAssign) and node.value is not None:
            targets = [node.target]
        value = getattr(node, "value", None)
        for target in targets:
            if isinstance(target, ast.Name) and value is not None:
                try:
                    found[target.id] = (ast.literal_eval(value), node.lineno)
                except ValueError:
                    continue
    return found


def _declared(tree: ast.Module, constants: dict[str, Any]) -> list[tuple[str, int]]:
    chunks: list[tuple[str, int]] = []
    for name, removes in (("PGFLOW_FLOWS", False), ("PGFLOW_RETIRED", True)):
        value, line = constants.get(name, ({}, 0))
        for slug, sql in dict(value).items():
            chunks.append(
                (render_query("remove_flow", flow_slug=slug) + ";" if removes else sql, line)
            )
    return chunks


def _calls(
    function: ast.FunctionDef, constants: dict[str, Any], path: Path, convention: bool
) -> list[tuple[str, int]]:
    calls = [n for n in ast.walk(function) if isinstance(n, ast.Call) and _op_name(n) in _OPS]
    chunks: list[tuple[str, int]] = []
    for call in sorted(calls, key=lambda n: (n.lineno, n.col_offset)):
        args = [_resolve(a, constants) for a in call.args]
        args += [_resolve(k.value, constants) for k in call.keywords]
        if any(a is None for a in args) or not args:
            if convention or _op_name(call) == "execute":
                continue  # a loop over PGFLOW_FLOWS, or op.execute of something else
            raise _unreadable(path, call)
        sql = _sql_of(_op_name(call), args)
        if sql is not None:
            chunks.append((sql, call.lineno))
    return chunks


def _op_name(call: ast.Call) -> str | None:
    return call.func.attr if isinstance(call.func, ast.Attribute) else None


def _resolve(node: ast.expr, constants: dict[str, Any]) -> Any:
    if isinstance(node, ast.Name):
        return constants.get(node.id, (None, 0))[0]
    try:
        return ast.literal_eval(node)
    except ValueError:
        return None


def _sql_of(name: str | None, args: list[Any]) -> str | None:
    if name == "pgflow_remove_flow":
        return render_query("remove_flow", flow_slug=str(args[0])) + ";"
    text = args[0]
    if isinstance(text, str) and (name == "pgflow_apply_flow" or _PGFLOW_SQL.search(text)):
        return text
    return None


def _unreadable(path: Path, call: ast.Call) -> CompileError:
    return CompileError(
        f"cannot read op.{_op_name(call)}(...) in {path} line {call.lineno}: its arguments "
        "are not literals or module-level constants",
        hint="pass the SQL and slug as literals (as `pgflow alembic revision` writes them)",
        path=str(path),
        line=call.lineno,
    )
