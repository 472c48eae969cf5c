"""Multi-host URLs, ``listen_url`` and ``reader_url``: resolution and what messages say."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from pgflow.db.errors import describe_conninfo, translate_error
from pgflow.db.target import (
    DatabaseTarget,
    check_conninfo,
    configured_listen_url,
    resolve_reader,
)
from pgflow.errors import ConfigurationError, DatabaseError

MULTI = "postgresql://app:pw@db1:5432,db2:5433/prod?target_session_attrs=read-write"


@pytest.mark.parametrize(
    "conninfo, expected",
    [
        (MULTI, "postgresql://app@db1:5432,db2:5433/prod?target_session_attrs=read-write"),
        ("host=a,b port=6432 dbname=d", "postgresql://a:6432,b:6432/d"),
        ("host=a,b dbname=d user=u password=pw", "postgresql://u@a,b/d"),
        ("postgresql:///d?host=/run/a,/run/b", "postgresql:///d?host=/run/a,/run/b"),
    ],
)
def test_multi_host_urls_are_described_host_by_host(conninfo: str, expected: str) -> None:
    assert describe_conninfo(conninfo) == expected
    check_conninfo(conninfo)  # accepted wherever a URL is


def test_a_failed_multi_host_connection_names_every_host_and_why() -> None:
    url = "postgresql://app:s3cret@127.0.0.1:1,127.0.0.1:2/x?connect_timeout=2"
    with pytest.raises(psycopg.OperationalError) as caught:
        psycopg.connect(url)
    error = translate_error(caught.value, conninfo=url)
    assert isinstance(error, DatabaseError)
    assert error.message == (
        "could not connect to Postgres at postgresql://app@127.0.0.1:1,127.0.0.1:2/x: "
        "every host failed: 127.0.0.1:1: Connection refused; 127.0.0.1:2: Connection refused"
    )
    assert "s3cret" not in str(error)


def test_the_listen_url_comes_from_the_argument_then_the_environment() -> None:
    env = {"PGFLOW_LISTEN_URL": "postgresql://env@direct/db"}
    assert configured_listen_url("postgresql://arg@direct/db", environ=env) == (
        "postgresql://arg@direct/db"
    )
    assert configured_listen_url(None, environ=env) == "postgresql://env@direct/db"
    assert configured_listen_url(None, environ={"PGFLOW_LISTEN_URL": ""}) is None
    assert configured_listen_url(None, environ={}) is None


def test_a_malformed_listen_url_is_refused_without_echoing_it() -> None:
    with pytest.raises(ConfigurationError, match="invalid database URL") as caught:
        configured_listen_url("nonsense password=hush =", environ={})
    assert "hush" not in str(caught.value)


def test_the_reader_comes_from_the_argument_then_the_environment_then_the_database(
    tmp_path: Path,
) -> None:
    env = {
        "PGFLOW_READER_URL": "postgresql://r@replica/db",
        "PGFLOW_DATABASE_URL": "postgresql://p@primary/db",
    }
    argument = resolve_reader("postgresql://a@replica/db", environ=env, cwd=tmp_path)
    assert argument == DatabaseTarget("postgresql://a@replica/db", "reader_argument")
    assert argument.is_reader
    assert "Reading from Postgres at postgresql://a@replica/db (from --reader-url)" in (
        argument.describe()
    )
    from_env = resolve_reader(None, environ=env, cwd=tmp_path)
    assert from_env == DatabaseTarget("postgresql://r@replica/db", "PGFLOW_READER_URL")
    fallback = resolve_reader(None, environ={"PGFLOW_DATABASE_URL": "postgresql://p@primary/db"})
    assert fallback == DatabaseTarget("postgresql://p@primary/db", "PGFLOW_DATABASE_URL")
    assert not fallback.is_reader
    explicit_primary = resolve_reader(None, "postgresql://x@primary/db", environ={})
    assert explicit_primary == DatabaseTarget("postgresql://x@primary/db", "argument")
