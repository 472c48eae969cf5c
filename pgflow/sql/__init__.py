"""The SQL that ships with pgflow, read as package data.

``schema/NNNN_*.sql`` is the declarative schema (what developers edit); ``queries.sql``
holds the named runtime queries. Python refers to a runtime query only by its name::

    -- name: schema_version
    -- The highest applied migration id, or NULL before the first install.
    select max(id) as version from pgflow.schema_migrations;

A block starts at a ``-- name: <name>`` line, may have one ``-- <description>`` line right
after it, and runs until the next ``-- name:`` line.
"""

from __future__ import annotations

import re
from functools import cache
from importlib.resources import files
from typing import LiteralString

from pgflow.errors import SchemaError

__all__ = ["parse_queries", "queries", "query", "schema_files"]

_NAME_LINE = re.compile(r"^--\s*name:\s*(?P<name>\S*)\s*$")
_VALID_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")
_QUERIES_FILE = "pgflow/sql/queries.sql"


def schema_files() -> list[tuple[str, str]]:
    """Return the declarative schema files in the order they must run.

    Returns:
        ``(file name, SQL text)`` pairs for ``pgflow/sql/schema/*.sql``, sorted by name.
    """
    schema_dir = files("pgflow.sql") / "schema"
    entries = [e for e in schema_dir.iterdir() if e.is_file() and e.name.endswith(".sql")]
    return [(e.name, e.read_text(encoding="utf-8")) for e in sorted(entries, key=lambda e: e.name)]


@cache
def queries() -> dict[str, LiteralString]:
    """Return every named query of ``pgflow/sql/queries.sql`` (parsed once, then cached).

    Raises:
        SchemaError: the file is malformed (a packaging bug: the message names the line).
    """
    text = (files("pgflow.sql") / "queries.sql").read_text(encoding="utf-8")
    return parse_queries(text, source=_QUERIES_FILE)


def query(name: str) -> LiteralString:
    """Return the SQL of one named query.

    Raises:
        KeyError: no query has that name; the message lists the known names.
    """
    known = queries()
    try:
        return known[name]
    except KeyError:
        raise KeyError(
            f"no query named {name!r} in {_QUERIES_FILE}; known: {', '.join(sorted(known))}"
        ) from None


def parse_queries(text: str, *, source: str = "<string>") -> dict[str, LiteralString]:
    """Split a queries file into ``{name: sql}``.

    Args:
        text: the file's content.
        source: the file name to cite in error messages.

    Returns:
        The queries in file order. Each SQL text is stripped of surrounding blank space.

    Raises:
        SchemaError: SQL before the first ``-- name:`` line, an invalid or duplicate name,
            or a block without SQL.
    """
    result: dict[str, LiteralString] = {}
    for name, line_no, body in _blocks(text, source):
        if name in result:
            raise SchemaError(
                f"{source} line {line_no}: query {name!r} is defined twice",
                hint="Rename one of the two blocks.",
            )
        if not body:
            raise SchemaError(
                f"{source} line {line_no}: query {name!r} has no SQL",
                hint="Add the SQL below the name line, or remove the block.",
            )
        # The file is package data we ship, not user input: it is as literal as a constant
        # (mypy treats LiteralString as str, so no cast is needed for it).
        result[name] = body
    return result


def _blocks(text: str, source: str) -> list[tuple[str, int, str]]:
    """Return ``(name, line number, body)`` per block, description lines removed."""
    blocks: list[tuple[str, int, list[str]]] = []
    for line_no, line in enumerate(text.splitlines(), start=1):
        match = _NAME_LINE.match(line)
        if match:
            blocks.append((_checked_name(match["name"], source, line_no), line_no, []))
        elif blocks:
            blocks[-1][2].append(line)
        elif line.strip() and not line.lstrip().startswith("--"):
            raise SchemaError(
                f"{source} line {line_no}: SQL before the first '-- name:' line",
                hint="Start every query with a '-- name: <name>' line.",
            )
    return [(name, line_no, _body(lines)) for name, line_no, lines in blocks]


def _checked_name(name: str, source: str, line_no: int) -> str:
    if not _VALID_NAME.match(name):
        raise SchemaError(
            f"{source} line {line_no}: invalid query name {name!r}",
            hint="Use lower-case letters, digits and underscores, e.g. '-- name: start_flow'.",
        )
    return name


def _body(lines: list[str]) -> str:
    """Drop the optional description line (a comment right after the name), then strip."""
    if lines and lines[0].lstrip().startswith("--"):
        lines = lines[1:]
    return "\n".join(lines).strip()
