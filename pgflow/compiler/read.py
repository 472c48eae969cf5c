"""Read earlier migration files: which flows do they define, with which shapes?

The recipe: split each file with a lexer that understands quoting
(:mod:`pgflow.compiler.sqlscan`), parse with sqlglot only the statements that mention a
pgflow definition function, collect calls in both positions (``SELECT pgflow.f(…)`` and
``SELECT * FROM pgflow.f(…)``, ``=>`` and ``:=``), and cross-check the count against a text
scan. A call that cannot be read (inside a ``DO`` block or a function body, or with
computed arguments) stops the read with the file and line, never silently.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError

from pgflow.compiler.calls import FoundCall, Unreadable, read_call
from pgflow.compiler.defined import DefinedFlow, FlowCollector
from pgflow.compiler.sqlscan import Statement, split_statements
from pgflow.errors import CompileError

__all__ = ["DefinedFlow", "FoundCall", "read_defined_flows", "read_file_calls"]

_CALL_TEXT = re.compile(
    r'"?pgflow"?\s*\.\s*"?(create_flow|add_step|delete_flow_and_data)"?\s*\(', re.IGNORECASE
)


def read_defined_flows(directory: Path) -> dict[str, DefinedFlow]:
    """Return the flows the ``*.sql`` files of ``directory`` define, by slug.

    Files are read in name order (migration order). A slug deleted with
    ``pgflow.delete_flow_and_data`` is forgotten until it is defined again.

    Raises:
        CompileError: a file cannot be read, or a pgflow call in it cannot be understood.
    """
    collector = FlowCollector()
    for path in sorted(directory.glob("*.sql")):
        for call in read_file_calls(path):
            collector.add(call)
    return collector.flows()


def read_file_calls(path: Path) -> list[FoundCall]:
    """Return the pgflow definition calls of one SQL file, in order.

    Raises:
        CompileError: naming the file and line of a call that cannot be read.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CompileError(f"cannot read {path}: {exc}", path=str(path)) from exc
    calls: list[FoundCall] = []
    for statement in split_statements(text):
        matches = list(_CALL_TEXT.finditer(statement.scan))
        if matches:
            calls += _statement_calls(path, statement, matches)
    return calls


def _statement_calls(
    path: Path, statement: Statement, matches: list[re.Match[str]]
) -> list[FoundCall]:
    lines = [statement.line + statement.scan.count("\n", 0, m.start()) for m in matches]
    tree = _parse(path, statement, lines[0])
    nodes = [f for node in tree.walk(bfs=False) if (f := _pgflow_function(node)) is not None]
    if len(nodes) != len(matches):
        raise _unreadable(
            path, lines[len(nodes)] if len(nodes) < len(lines) else lines[0], _why(tree)
        )
    found: list[FoundCall] = []
    for node, line in zip(nodes, lines, strict=True):
        try:
            found.append(read_call(node, str(path), line))
        except Unreadable as exc:
            raise _unreadable(path, line, str(exc)) from exc
    return found


def _parse(path: Path, statement: Statement, line: int) -> exp.Expr:
    try:
        with _quiet_sqlglot():
            tree = sqlglot.parse_one(statement.code, read="postgres")
    except SqlglotError as exc:
        raise _unreadable(path, line, f"sqlglot could not parse the statement: {exc}") from exc
    return tree


def _pgflow_function(node: exp.Expr) -> exp.Anonymous | None:
    if isinstance(node, exp.Dot) and isinstance(node.expression, exp.Anonymous):
        schema, function = node.this, node.expression
    elif isinstance(node, exp.Table) and isinstance(node.this, exp.Anonymous):
        schema, function = node.args.get("db"), node.this
    else:
        return None
    if isinstance(schema, exp.Identifier) and schema.name.lower() == "pgflow":
        return function
    return None


def _why(tree: exp.Expr) -> str:
    if isinstance(tree, exp.Command):
        return "the call is inside a DO block or another statement sqlglot cannot look into"
    if isinstance(tree, exp.Create):
        return "the call is inside a function or procedure body"
    return "the call is nested where it cannot be read"


def _unreadable(path: Path, line: int, why: str) -> CompileError:
    return CompileError(
        f"could not read a pgflow call in {path} line {line}: {why}",
        hint="write pgflow.create_flow / add_step calls as plain top-level SELECT statements "
        "with literal arguments (as `pgflow compile` emits them)",
        path=str(path),
        line=line,
    )


@contextmanager
def _quiet_sqlglot() -> Iterator[None]:
    # sqlglot logs a warning when it falls back to an opaque Command (e.g. DO blocks); the
    # cross-check above reports those statements properly, so the warning is noise here.
    logger = logging.getLogger("sqlglot")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)
