"""Connection and pool helpers against a real server."""

from __future__ import annotations

import psycopg
import pytest
from psycopg.rows import dict_row

from pgflow.db.connection import aconnect, connect, open_async_pool, open_pool
from pgflow.errors import DatabaseError

UNREACHABLE = "postgresql://u:pw@/d?host=/nonexistent-pgflow-socket-dir"


def test_connect_is_autocommit_and_named(db_url: str) -> None:
    with connect(db_url) as conn:
        assert conn.autocommit
        row = conn.execute("select current_setting('application_name')").fetchone()
        assert row == ("pgflow",)


def test_connect_passes_extra_options_to_psycopg(db_url: str) -> None:
    with connect(db_url, application_name="mine", autocommit=False) as conn:
        assert not conn.autocommit
        assert conn.execute("show application_name").fetchone() == ("mine",)


async def test_aconnect_is_autocommit(db_url: str) -> None:
    async with await aconnect(db_url) as conn:
        assert conn.autocommit
        cur = await conn.execute("select 1")
        assert await cur.fetchone() == (1,)


def test_pool_hands_out_autocommit_connections(db_url: str) -> None:
    with open_pool(db_url, min_size=1, max_size=2) as pool, pool.connection() as conn:
        assert conn.autocommit
        assert conn.execute("select count(*) from pgflow.flows").fetchone() == (0,)


async def test_async_pool_hands_out_autocommit_connections(db_url: str) -> None:
    pool = await open_async_pool(db_url, min_size=1, max_size=2)
    async with pool, pool.connection() as conn:
        assert conn.autocommit
        cur = await conn.execute("select count(*) from pgflow.flows")
        assert await cur.fetchone() == (0,)


def test_pool_passes_connection_options(db_url: str) -> None:
    with open_pool(db_url, row_factory=dict_row) as pool, pool.connection() as conn:
        assert conn.execute("select 1 as one").fetchone() == {"one": 1}


def test_pool_that_cannot_connect_fails_fast_and_clearly() -> None:
    with pytest.raises(DatabaseError) as exc:
        open_pool(UNREACHABLE, timeout=0.5)
    assert "at postgresql://u@/d?host=/nonexistent-pgflow-socket-dir" in exc.value.message
    assert "pw" not in str(exc.value).replace("postgresql", "")


async def test_async_pool_that_cannot_connect_fails_fast_and_clearly() -> None:
    with pytest.raises(DatabaseError, match="nonexistent-pgflow-socket-dir"):
        await open_async_pool(UNREACHABLE, timeout=0.5)


def test_sync_fixture_connection_is_autocommit_with_dict_rows(conn: psycopg.Connection) -> None:
    assert conn.autocommit
    assert conn.execute("select 1 as one").fetchone() == {"one": 1}


def test_pool_lends_its_most_recently_returned_connection_first(db_url: str) -> None:
    """A pool lends its newest idle connection, so a light load keeps reusing one warm
    server process instead of going round all of them (measured: docs/performance.md)."""
    with open_pool(db_url, min_size=3, max_size=3) as pool:
        taken = [pool.getconn() for _ in range(3)]
        for conn in taken:
            pool.putconn(conn)
        with pool.connection() as conn:
            assert conn is taken[-1]
        with pool.connection() as conn:
            assert conn is taken[-1]


async def test_async_pool_lends_its_most_recently_returned_connection_first(db_url: str) -> None:
    pool = await open_async_pool(db_url, min_size=3, max_size=3)
    async with pool:
        taken = [await pool.getconn() for _ in range(3)]
        for conn in taken:
            await pool.putconn(conn)
        async with pool.connection() as conn:
            assert conn is taken[-1]
        async with pool.connection() as conn:
            assert conn is taken[-1]
        assert pool.get_stats()["pool_available"] == 3
