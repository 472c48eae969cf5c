"""The contention benchmark's "without wake-ups" variant: the engine's NOTIFY helpers
emptied in one database, then restored exactly (benchmarks/contention.py)."""

from __future__ import annotations

import uuid

import psycopg
import pytest

contention = pytest.importorskip("benchmarks.contention")  # a source checkout, not an sdist

DEFINITIONS = """
select p.oid::regprocedure::text, pg_get_functiondef(p.oid)
from pg_proc p join pg_namespace n on n.oid = p.pronamespace
where n.nspname = 'pgflow' order by 1
"""


def notified(conn: psycopg.Connection[object]) -> list[str]:
    """Send a task wake-up and a cancellation signal; return the channels that arrived."""
    with psycopg.connect(conn.info.dsn, autocommit=True) as sender:
        sender.execute("select pgflow._wake_workers('bench_single')")
        sender.execute("select pgflow._signal_cancelled(%s)", [uuid.uuid4()])
    return sorted(n.channel for n in conn.notifies(timeout=0.5, stop_after=2))


def test_silenced_sends_nothing_and_restores_every_definition(db_url: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("listen pgflow_tasks")
        conn.execute("listen pgflow_cancelled")
        before = conn.execute(DEFINITIONS).fetchall()
        with contention.silenced(db_url) as names:
            assert "pgflow._wake_workers(text)" in names
            assert "pgflow._signal_cancelled(uuid)" in names
            left = conn.execute(
                "select count(*) from pg_proc p join pg_namespace n on n.oid = p.pronamespace"
                " where n.nspname = 'pgflow' and p.prosrc like '%pg_notify%'"
            ).fetchone()
            assert left == (0,)
            assert notified(conn) == []
        assert conn.execute(DEFINITIONS).fetchall() == before
        assert notified(conn) == ["pgflow_cancelled", "pgflow_tasks"]


def test_a_notifying_function_that_returns_a_value_is_refused_untouched(db_url: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(
            "create function pgflow._bench_probe() returns int language plpgsql as"
            " $$ begin perform pg_notify('x', 'y'); return 1; end; $$"
        )
        conn.execute("listen pgflow_tasks")
        conn.execute("listen pgflow_cancelled")
        before = conn.execute(DEFINITIONS).fetchall()
        refused = pytest.raises(RuntimeError, match=r"pgflow\._bench_probe\(\) calls pg_notify")
        with refused, contention.silenced(db_url):
            pass
        assert conn.execute(DEFINITIONS).fetchall() == before
        assert notified(conn) == ["pgflow_cancelled", "pgflow_tasks"]
