"""The declarative schema and the migrations build the same database.

DB A runs ``pgflow/sql/schema/*.sql`` in order; DB B is installed by the installer from
``pgflow/migrations/``. Their ``pg_dump --schema-only --schema=pgflow`` outputs, split per
object and normalised, must be equal (the installer's ``schema_migrations`` table aside).
The wheel's ``pg_dump`` is used: it matches the embedded server's major version and can
dump any older server too.
"""

from __future__ import annotations

import difflib
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from pgflow.db.embedded import bin_dir
from pgflow.db.schema import install
from pgflow.sql import schema_files
from pgflow.testing import DatabaseFactory

_SECTION = re.compile(r"^-- (?:Data for )?Name: .*$", re.MULTILINE)
_NOISE = re.compile(r"^(--.*|SET .*|SELECT pg_catalog\.set_config.*|\\(un)?restrict .*|\s*)$")


def pg_dump() -> Path:
    return bin_dir() / "pg_dump"


def dump_sections(url: str) -> dict[str, str]:
    """pg_dump's objects as {section header: normalised body}."""
    result = subprocess.run(
        [
            str(pg_dump()),
            "--schema-only",
            "--schema=pgflow",
            "--exclude-table=pgflow.schema_migrations",
            "--dbname",
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    headers = _SECTION.findall(result.stdout)
    bodies = _SECTION.split(result.stdout)[1:]
    sections: dict[str, str] = {}
    for header, body in zip(headers, bodies, strict=True):
        lines = [line.rstrip() for line in body.splitlines() if not _NOISE.match(line)]
        sections[header] = "\n".join(lines)
    return sections


def build_from_schema_files(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        for _, text in schema_files():
            conn.execute(text.encode("utf-8"))


def explain(a: dict[str, str], b: dict[str, str]) -> str:
    lines = []
    for header in sorted(set(a) | set(b)):
        if a.get(header) != b.get(header):
            diff = difflib.unified_diff(
                (a.get(header) or "<missing>").splitlines(),
                (b.get(header) or "<missing>").splitlines(),
                "schema files",
                "migrations",
                lineterm="",
            )
            lines += [header, *diff, ""]
    return "\n".join(lines)


@pytest.fixture
def two_empty_databases(pgflow_databases: DatabaseFactory) -> Iterator[list[str]]:
    urls = [pgflow_databases.create(schema=False) for _ in range(2)]
    yield urls
    for url in urls:
        pgflow_databases.drop(url)


def test_migrations_converge_with_the_schema_files(two_empty_databases: list[str]) -> None:
    from_schema, from_migrations = two_empty_databases
    build_from_schema_files(from_schema)
    install(from_migrations)
    a, b = dump_sections(from_schema), dump_sections(from_migrations)
    assert any("Type: FUNCTION" in header for header in a), "pg_dump found no functions"
    assert a == b, (
        "The migrations do not build the same schema as pgflow/sql/schema/: put the missing "
        "change in pgflow/sql/upgrades/ and run scripts/build-migrations.\n" + explain(a, b)
    )


def test_the_comparison_notices_drift(two_empty_databases: list[str]) -> None:
    left, right = two_empty_databases
    install(left)
    install(right)
    with psycopg.connect(right, autocommit=True) as conn:
        conn.execute("alter table pgflow.flows add column drift int")
    a, b = dump_sections(left), dump_sections(right)
    assert len(a) > 20
    assert a != b
    assert "+    drift integer" in explain(a, b)
