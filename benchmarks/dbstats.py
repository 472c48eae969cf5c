"""What the database did: ``pg_stat_database`` and WAL deltas, ``pg_stat_statements``.

Backends flush their statistics when they exit, so a measurement waits until the workers'
connections are gone (:func:`wait_until_alone`) before taking the second snapshot. The WAL
position and ``pg_stat_wal`` (records, full-page images) are cluster-wide: on a shared
server other databases' writes count too.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import psycopg
from psycopg import sql

__all__ = [
    "cost_per",
    "cpu_per",
    "delta",
    "reset_statements",
    "set_track",
    "snapshot",
    "top_statements",
    "wait_until_alone",
    "wal_breakdown",
    "wal_lsn",
]

logger = logging.getLogger(__name__)

_SNAPSHOT = """
select d.xact_commit, d.xact_rollback, d.tup_inserted, d.tup_updated, d.tup_deleted,
       d.blks_hit, d.blks_read, (pg_current_wal_lsn() - '0/0'::pg_lsn)::bigint as wal_bytes,
       w.wal_records, w.wal_fpi, w.wal_buffers_full
from pg_stat_database d, pg_stat_wal w
where d.datname = current_database()
"""

_STATEMENTS = """
select toplevel, calls, total_exec_time, mean_exec_time, rows,
       shared_blks_hit, shared_blks_read, wal_bytes::bigint, regexp_replace(query, '\\s+', ' ', 'g')
from pg_stat_statements
where dbid = (select oid from pg_database where datname = current_database())
  and query not ilike '%%pg_stat_statements%%'
order by total_exec_time desc
limit %s
"""


def snapshot(conn: psycopg.Connection[Any]) -> dict[str, int]:
    """Counters of this database and the WAL position, read afresh.

    This session's own pending counters are flushed first (they are flushed when it goes
    idle between the two statements).
    """
    conn.execute("select pg_stat_force_next_flush()")
    conn.execute("select pg_stat_clear_snapshot()")
    cur = conn.execute(_SNAPSHOT)
    row = cur.fetchone()
    assert row is not None and cur.description is not None
    return {col.name: int(value) for col, value in zip(cur.description, row, strict=True)}


def delta(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    """``after - before`` for every counter."""
    return {key: after[key] - before[key] for key in before}


def cost_per(counters: dict[str, int], units: int) -> dict[str, float]:
    """Commits, WAL bytes, full-page images and tuples written per unit (task, job, ...)."""
    if units <= 0:
        return {}
    return {
        "commits": counters["xact_commit"] / units,
        "wal_bytes": counters["wal_bytes"] / units,
        "wal_fpi": counters["wal_fpi"] / units,
        "wal_buffers_full": counters["wal_buffers_full"] / units,
        "tup_inserted": counters["tup_inserted"] / units,
        "tup_updated": counters["tup_updated"] / units,
        "tup_deleted": counters["tup_deleted"] / units,
        "blks_hit": counters["blks_hit"] / units,
    }


def cpu_per(
    members: list[dict[str, Any]],
    server_before: float | None,
    server_after: float | None,
    units: int,
) -> dict[str, float]:
    """CPU microseconds per unit: the worker processes' and the server's."""
    result = {"client_cpu_us": sum(m.get("cpu_s", 0.0) for m in members) / units * 1e6}
    if server_before is not None and server_after is not None:
        result["server_cpu_us"] = (server_after - server_before) / units * 1e6
    return result


def wait_until_alone(conn: psycopg.Connection[Any], timeout: float = 15.0) -> None:
    """Wait until no other client backend is connected to this database."""
    deadline = time.monotonic() + timeout
    query = """
        select count(*) from pg_stat_activity
        where datname = current_database() and pid <> pg_backend_pid()
          and backend_type = 'client backend'
    """
    while time.monotonic() < deadline:
        row = conn.execute(query).fetchone()
        if row is not None and row[0] == 0:
            return
        time.sleep(0.01)
    logger.warning("other sessions are still connected; statistics may lag")


def reset_statements(conn: psycopg.Connection[Any]) -> None:
    """Forget what ``pg_stat_statements`` collected so far."""
    conn.execute("select pg_stat_statements_reset()")


def set_track(conn: psycopg.Connection[Any], track: str) -> None:
    """``pg_stat_statements.track`` for new sessions of this database (``top`` or ``all``)."""
    dbname = conn.info.dbname
    conn.execute(
        sql.SQL("alter database {} set pg_stat_statements.track = {}").format(
            sql.Identifier(dbname), sql.Literal(track)
        )
    )


def top_statements(conn: psycopg.Connection[Any], limit: int = 12) -> list[dict[str, Any]]:
    """The statements that took the most execution time since the last reset."""
    rows = conn.execute(_STATEMENTS, [limit]).fetchall()
    keys = ("toplevel", "calls", "total_ms", "mean_ms", "rows", "blks_hit", "blks_read", "wal")
    return [{**dict(zip(keys, row[:8], strict=True)), "query": row[8][:300]} for row in rows]


def wal_lsn(conn: psycopg.Connection[Any]) -> str:
    """The current WAL insert position."""
    row = conn.execute("select pg_current_wal_lsn()::text").fetchone()
    assert row is not None
    return str(row[0])


def wal_breakdown(
    conn: psycopg.Connection[Any], start: str, end: str, limit: int = 8
) -> list[dict[str, Any]]:
    """WAL between two positions by record type (``pg_walinspect``), largest first."""
    rows = conn.execute(
        """
        select "resource_manager/record_type", count, record_size, fpi_size, combined_size
        from pg_get_wal_stats(%s::pg_lsn, %s::pg_lsn, per_record => true)
        order by combined_size desc limit %s
        """,
        [start, end, limit],
    ).fetchall()
    keys = ("record_type", "count", "record_bytes", "fpi_bytes", "bytes")
    return [dict(zip(keys, row, strict=True)) for row in rows]
