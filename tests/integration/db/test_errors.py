"""wrap_db_errors against real Postgres errors: SQLSTATE → class, message, hint, cause."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from pgflow import errors
from pgflow.db.connection import aconnect, connect
from pgflow.db.errors import PGFLOW_SQLSTATES, wrap_db_errors


@pytest.fixture
def plain(empty_db_url: str) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(empty_db_url, autocommit=True) as conn:
        yield conn


def raise_sql(code: str, message: str, hint: str | None = None, detail: str | None = None) -> bytes:
    options = [f"errcode = '{code}'", f"message = '{message}'"]
    options += [f"hint = '{hint}'"] if hint is not None else []
    options += [f"detail = '{detail}'"] if detail is not None else []
    return f"do $$ begin raise exception using {', '.join(options)}; end $$".encode()


@pytest.mark.parametrize("code, cls", sorted(PGFLOW_SQLSTATES.items()))
def test_pgflow_sqlstates_map_to_their_classes(
    plain: psycopg.Connection[Any], code: str, cls: type[errors.PgflowError]
) -> None:
    with pytest.raises(cls) as exc, wrap_db_errors():
        plain.execute(raise_sql(code, "flow ''f'' is broken", hint="Fix flow f."))
    assert type(exc.value) is cls
    assert exc.value.message == "flow 'f' is broken"
    assert exc.value.hint == "Fix flow f."
    assert exc.value.sqlstate == code
    assert isinstance(exc.value.__cause__, psycopg.Error)
    assert str(exc.value) == "flow 'f' is broken\nHint: Fix flow f."


def test_the_mapping_is_the_table_in_the_sql_api_docs() -> None:
    doc = (Path(__file__).resolve().parents[3] / "docs" / "sql-api.md").read_text()
    table = re.findall(r"^\| `(PGF\d\d)` \| .* \| `(\w+)` \|$", doc, re.MULTILINE)
    assert {code: cls.__name__ for code, cls in PGFLOW_SQLSTATES.items()} == dict(table)


def test_detail_goes_into_the_message_and_empty_hint_is_none(
    plain: psycopg.Connection[Any],
) -> None:
    with pytest.raises(errors.ShapeMismatchError) as exc, wrap_db_errors():
        plain.execute(raise_sql("PGF04", "shape differs", hint="", detail="step 2 differs"))
    assert exc.value.message == "shape differs\nDetail: step 2 differs"
    assert exc.value.hint is None


def test_unique_violation_carries_the_constraint_name(plain: psycopg.Connection[Any]) -> None:
    plain.execute("create table t (id int constraint t_pkey primary key)")
    plain.execute("insert into t values (1)")
    with pytest.raises(errors.DatabaseError) as exc, wrap_db_errors():
        plain.execute("insert into t values (1)")
    assert exc.value.constraint_name == "t_pkey"
    assert exc.value.sqlstate == "23505"
    assert exc.value.message.startswith("duplicate key value violates unique constraint")
    assert "Detail: Key (id)=(1) already exists." in exc.value.message


def test_missing_pgflow_schema_suggests_install(plain: psycopg.Connection[Any]) -> None:
    with pytest.raises(errors.SchemaError) as exc, wrap_db_errors():
        plain.execute("select pgflow.start_flow('f', '{}'::jsonb)")
    assert 'schema "pgflow" does not exist' in exc.value.message
    assert exc.value.hint and "pgflow install" in exc.value.hint


def test_values_postgres_rejects_are_invalid_input(plain: psycopg.Connection[Any]) -> None:
    with pytest.raises(errors.InvalidInputError) as exc, wrap_db_errors():
        plain.execute("select 'not json'::jsonb")
    assert exc.value.message.startswith("invalid input syntax for type json")
    assert exc.value.sqlstate == "22P02"


def test_missing_privilege_suggests_the_pgflow_roles(db_url: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("set role pgflow_worker")
        with pytest.raises(errors.DatabaseError) as exc, wrap_db_errors():
            conn.execute("select * from pgflow.runs")
    assert exc.value.message == "permission denied for table runs"
    assert exc.value.hint and "pgflow_reader" in exc.value.hint


def test_client_side_misuse_is_not_blamed_on_the_url(plain: psycopg.Connection[Any]) -> None:
    with pytest.raises(errors.DatabaseError) as exc, wrap_db_errors():
        plain.execute("select %s, %s", [1])
    assert type(exc.value) is errors.DatabaseError
    assert "placeholders" in exc.value.message


def test_other_exceptions_pass_through_untouched() -> None:
    with pytest.raises(ValueError, match="not a db error"), wrap_db_errors():
        raise ValueError("not a db error")


def test_decorator_on_sync_and_async_functions(empty_db_url: str) -> None:
    @wrap_db_errors
    def sync_call() -> None:
        with psycopg.connect(empty_db_url) as conn:
            conn.execute(raise_sql("PGF07", "no run 42"))

    with pytest.raises(errors.UnknownRunError, match="no run 42"):
        sync_call()
    assert sync_call.__name__ == "sync_call"


async def test_async_decorator_and_async_with(empty_db_url: str) -> None:
    @wrap_db_errors()
    async def async_call() -> None:
        async with await psycopg.AsyncConnection.connect(empty_db_url) as conn:
            await conn.execute(raise_sql("PGF06", "flow f is being defined"))

    with pytest.raises(errors.FlowNotReadyError, match="being defined"):
        await async_call()
    with pytest.raises(errors.InvalidInputError):
        async with wrap_db_errors(), await psycopg.AsyncConnection.connect(empty_db_url) as conn:
            await conn.execute(raise_sql("PGF08", "bad input"))


def test_unreachable_server_names_the_host_but_never_the_password() -> None:
    url = "postgresql://app:s3cret-pw@127.0.0.1:1/appdb?connect_timeout=2"
    with pytest.raises(errors.DatabaseError) as exc:
        connect(url)
    text = str(exc.value)
    assert "s3cret-pw" not in text
    assert exc.value.message.startswith(
        "could not connect to Postgres at postgresql://app@127.0.0.1:1/appdb"
    )
    assert exc.value.hint and "server is running" in exc.value.hint
    assert isinstance(exc.value.__cause__, psycopg.OperationalError)


async def test_async_connect_failure_is_translated_too() -> None:
    with pytest.raises(errors.DatabaseError, match="at postgresql://u@/d\\?host=/nonexistent"):
        await aconnect("postgresql://u:pw@/d?host=/nonexistent")


def test_missing_database_says_so_and_suggests_creating_it(pgflow_server: Any) -> None:
    url = pgflow_server.url_for("pgflow_no_such_database")
    with pytest.raises(errors.DatabaseError) as exc:
        connect(url)
    assert exc.value.message.startswith("could not connect to Postgres at postgresql://")
    assert 'database "pgflow_no_such_database" does not exist' in exc.value.message
    assert exc.value.hint and "create the database first" in exc.value.hint


def test_malformed_url_is_a_configuration_error() -> None:
    with pytest.raises(errors.ConfigurationError) as exc:
        connect("this is not a url password=secret")
    assert exc.value.message.startswith("invalid database URL: missing")
    assert "secret" not in str(exc.value)
