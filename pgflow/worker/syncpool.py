"""Database connections for sync handlers: a small sync pool opened on first use.

The worker's own pool is async; a sync handler runs in a thread, where an async connection
is of no use. ``ctx.sync_connection()`` borrows from this pool instead, which costs nothing
until a handler asks for it.
"""

from __future__ import annotations

import threading
from contextlib import AbstractContextManager
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool

from pgflow.db.connection import open_pool

__all__ = ["LazySyncPool"]


class LazySyncPool:
    """A sync connection pool to ``conninfo``, opened by the first ``connection()`` call.

    Args:
        conninfo: the worker's database.
        max_size: at most this many connections (the worker's concurrency).
    """

    def __init__(self, conninfo: str, max_size: int) -> None:
        self._conninfo = conninfo
        self._max_size = max_size
        self._pool: ConnectionPool | None = None
        self._lock = threading.Lock()

    def connection(self) -> AbstractContextManager[psycopg.Connection[Any]]:
        """Borrow a connection: ``with ctx.sync_connection() as conn: ...``."""
        with self._lock:
            if self._pool is None:
                self._pool = open_pool(self._conninfo, min_size=1, max_size=self._max_size)
            return self._pool.connection()

    def close(self) -> None:
        """Close the pool if it was ever opened."""
        with self._lock:
            if self._pool is not None:
                self._pool.close()
                self._pool = None
