"""The named-query parser and the package-data loaders of pgflow.sql."""

from __future__ import annotations

import pytest

from pgflow.errors import SchemaError
from pgflow.sql import parse_queries, queries, query, schema_files


def test_blocks_with_and_without_description() -> None:
    text = """-- file header comment

-- name: first
-- What the first query does.
select 1;

-- name: second
select %(x)s
  from t;
"""
    assert parse_queries(text) == {"first": "select 1;", "second": "select %(x)s\n  from t;"}


def test_comments_inside_the_sql_are_kept() -> None:
    text = "-- name: q\n-- description\nselect 1\n-- trailing note\n, 2;\n"
    assert parse_queries(text)["q"] == "select 1\n-- trailing note\n, 2;"


def test_duplicate_name_is_refused_with_the_line() -> None:
    with pytest.raises(SchemaError) as exc:
        parse_queries("-- name: a\nselect 1;\n-- name: a\nselect 2;\n", source="q.sql")
    assert exc.value.message == "q.sql line 3: query 'a' is defined twice"


def test_empty_block_is_refused() -> None:
    with pytest.raises(SchemaError, match="query 'a' has no SQL"):
        parse_queries("-- name: a\n-- only a description\n\n-- name: b\nselect 1;\n")


def test_sql_before_the_first_name_is_refused() -> None:
    with pytest.raises(SchemaError, match="line 2: SQL before the first '-- name:' line"):
        parse_queries("-- header\nselect 1;\n-- name: a\nselect 2;\n")


@pytest.mark.parametrize("name", ["", "Upper", "has-dash", "9lives"])
def test_invalid_names_are_refused(name: str) -> None:
    with pytest.raises(SchemaError, match="invalid query name"):
        parse_queries(f"-- name: {name}\nselect 1;\n")


def test_packaged_queries_load_and_include_the_installer_queries() -> None:
    loaded = queries()
    for name in ("schema_lock", "schema_migrations_create", "schema_migrations_insert"):
        assert loaded[name].strip()
    assert query("schema_version").startswith("select")


def test_unknown_query_name_lists_the_known_ones() -> None:
    with pytest.raises(KeyError, match=r"known: .*schema_lock"):
        query("no_such_query")


def test_schema_files_are_sorted_sql_files_starting_with_the_schema() -> None:
    files = schema_files()
    names = [name for name, _ in files]
    assert names == sorted(names)
    assert all(name.endswith(".sql") for name in names)
    assert names[0] == "0010_schema.sql"
    assert "create schema if not exists pgflow" in files[0][1]
