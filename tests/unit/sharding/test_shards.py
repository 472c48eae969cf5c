"""Shard lists, the proxy's connection strings and schema-version checks (no database)."""

from __future__ import annotations

import re

import pytest
from psycopg.conninfo import conninfo_to_dict

from pgflow.errors import ConfigurationError, SchemaError
from pgflow.sharding.install import proxy_sql_files
from pgflow.sharding.shards import check_versions, on_shard, proxy_conninfo, shard_list
from pgflow.worker.shards import worker_shards

A = "postgresql://app:secret@db1:5432/app"
B = "postgresql://app:secret@db2:5432/app"


def test_shards_are_numbered_in_the_order_given_and_labelled_without_passwords() -> None:
    shards = shard_list([A, B])
    assert [(s.index, s.count) for s in shards] == [(0, 2), (1, 2)]
    assert shards[1].label == "shard 1 of 2 (postgresql://app@db2:5432/app)"
    assert "secret" not in shards[0].label


@pytest.mark.parametrize(
    ("urls", "message"),
    [
        ([], "non-empty list"),
        ([A, ""], "non-empty list"),
        ([A, "postgresql://other:pw@db1:5432/app"], "same database as shard 0"),
        ([A, "host=db1 port=5432 dbname=app"], "same database as shard 0"),
        ([A, "host=db2 bogus"], "shard 1: cannot read its URL"),
    ],
)
def test_bad_shard_lists_are_refused(urls: list[str], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message) as refused:
        shard_list(urls)
    assert refused.value.hint


def test_the_proxy_gets_no_password_but_a_tcp_timeout() -> None:
    conninfo, password = proxy_conninfo(A)
    params = conninfo_to_dict(conninfo)
    assert password == "secret" and "password" not in params
    assert params["tcp_user_timeout"] == "5000" and params["host"] == "db1"
    kept, none = proxy_conninfo("host=db1 dbname=app tcp_user_timeout=900")
    assert conninfo_to_dict(kept)["tcp_user_timeout"] == "900" and none is None


def test_versions_must_agree_and_exist() -> None:
    a, b, c = shard_list([A, B, "postgresql://db3/app"])
    assert check_versions([(a, 4), (b, 4), (c, 4)]) == 4
    with pytest.raises(SchemaError, match=r"shard 2 of 3 \(.*\) has version 3, the others 4"):
        check_versions([(a, 4), (b, 4), (c, 3)])
    with pytest.raises(SchemaError, match=r"shard 1 of 3 \(.*\) has no pgflow schema") as missing:
        check_versions([(a, 4), (b, None), (c, 4)])
    assert missing.value.hint and "pgflow install" in missing.value.hint


def test_an_error_on_a_shard_keeps_its_class_and_attributes() -> None:
    (shard,) = shard_list([A])
    named = on_shard(shard, SchemaError("too old", hint="upgrade", sqlstate="PGF10"))
    assert isinstance(named, SchemaError)
    assert named.message == "shard 0 of 1 (postgresql://app@db1:5432/app): too old"
    assert (named.hint, named.sqlstate, str(named).splitlines()[1]) == (
        "upgrade",
        "PGF10",
        "Hint: upgrade",
    )


def test_worker_shards_exclude_single_database_options() -> None:
    assert worker_shards(None, A, None, None) is None
    assert len(worker_shards([A, B], None, None, None) or ()) == 2
    for database_url, pool, listen_url in (
        (A, None, None),
        (None, object(), None),
        (None, None, A),
    ):
        with pytest.raises(ConfigurationError, match="either shards or database_url"):
            worker_shards([A, B], database_url, pool, listen_url)


def test_the_proxy_sql_files_are_ordered_and_pin_search_paths() -> None:
    files = proxy_sql_files()
    names = [name for name, _ in files]
    assert names == sorted(names) and names[0] == "0010_schemas.sql"
    for name, text in files:
        assert text.startswith("-- "), f"{name} has no header comment"
        functions = len(re.findall(r"^language (plpgsql|sql)$", text, re.MULTILINE))
        pinned = text.count("set search_path = pg_catalog, pg_temp")
        assert pinned >= functions or "no fixed search_path" in text, name
