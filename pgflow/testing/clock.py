"""The database clock of a test database: move time as pgflow's SQL functions see it.

Every pgflow function reads the time through ``pgflow._now()``, which in production is
exactly ``now()``. :meth:`DatabaseClock.install` replaces it, in one test database, by a
version that adds an offset or returns a frozen instant kept in ``pgflow.test_clock``
(``pgflow/sql/testing/clock.sql``). Every connection to that database sees the change from
its next statement on, a worker's pool included, so backoff, ``start_delay`` and leases are
tested without sleeping::

    clock = DatabaseClock(url)
    clock.install()
    clock.advance(3600)     # an hour later, as far as pgflow is concerned
    clock.freeze()          # time stands still until unfreeze() (advance() still moves it)

Only for disposable databases: the ``flow_runner`` fixture installs it into the test's own.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from importlib.resources import files
from math import isfinite
from typing import Any

import psycopg
from psycopg.rows import dict_row

from pgflow.db.errors import wrap_db_errors
from pgflow.errors import PgflowError
from pgflow.sql import query

__all__ = ["ClockReading", "DatabaseClock", "clock_sql", "seconds_of"]


def clock_sql() -> bytes:
    """The SQL that installs the test clock (idempotent)."""
    return (files("pgflow.sql") / "testing" / "clock.sql").read_bytes()


def seconds_of(amount: float | timedelta) -> float:
    """``amount`` in seconds; refuse a negative amount or a non-number.

    Raises:
        PgflowError: time can only move forward.
    """
    seconds = amount.total_seconds() if isinstance(amount, timedelta) else amount
    if isinstance(seconds, bool) or not isinstance(seconds, int | float) or not isfinite(seconds):
        raise PgflowError(
            f"the test clock moves by a number of seconds or a timedelta, not {amount!r}",
            hint="pass e.g. clock.advance(3600) or clock.advance(timedelta(hours=1))",
        )
    if seconds < 0:
        raise PgflowError(
            f"the test clock only moves forward; advance({amount!r}) would move it back",
            hint="pass a positive amount, e.g. clock.advance(60); each test starts at real time",
        )
    return float(seconds)


@dataclass(frozen=True, slots=True)
class ClockReading:
    """What the test clock says.

    Attributes:
        now: the time pgflow functions see (the start of the reading transaction).
        offset: how far the clock is ahead of the real time (when not frozen).
        frozen_at: the instant it stands at, or None when it runs.
    """

    now: datetime
    offset: timedelta
    frozen_at: datetime | None

    @property
    def frozen(self) -> bool:
        """Whether the clock stands still."""
        return self.frozen_at is not None


class DatabaseClock:
    """The clock pgflow functions see in one test database (see the module docstring).

    Args:
        database_url: a disposable database with the pgflow schema, owned by this login.
    """

    def __init__(self, database_url: str) -> None:
        self.database_url = database_url
        self._conn: psycopg.Connection[dict[str, Any]] | None = None

    def install(self) -> None:
        """Install the test clock into the database (idempotent); it starts at real time."""
        self._execute(clock_sql())

    def read(self) -> ClockReading:
        """The current reading: time, offset and frozen instant."""
        row = self._row("test_clock_read")
        return ClockReading(row["now"], row["offset_by"], row["frozen_at"])

    def now(self) -> datetime:
        """The time pgflow functions see now."""
        return self.read().now

    def advance(self, seconds: float | timedelta) -> datetime:
        """Move the clock forward and wake workers whose tasks became due; the new time.

        Raises:
            PgflowError: ``seconds`` is negative or not a number.
        """
        self._execute(query("test_clock_advance"), {"seconds": seconds_of(seconds)})
        return self._woken()

    def advance_to(self, when: datetime) -> datetime:
        """Move the clock forward to ``when`` (a time already passed changes nothing)."""
        self._execute(query("test_clock_advance_to"), {"at": when})
        return self._woken()

    def freeze(self) -> datetime:
        """Stop the clock at the current time (``advance`` still moves it); that time."""
        self._execute(query("test_clock_freeze"))
        return self.now()

    def unfreeze(self) -> datetime:
        """Let the clock run again from where it stands; the current time."""
        self._execute(query("test_clock_unfreeze"))
        return self.now()

    def close(self) -> None:
        """Close the clock's connection (it reopens on next use)."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _woken(self) -> datetime:
        self._row("test_clock_wake")
        return self.now()

    def _connection(self) -> psycopg.Connection[dict[str, Any]]:
        if self._conn is None or self._conn.closed:
            self._conn = psycopg.connect(self.database_url, autocommit=True, row_factory=dict_row)
        return self._conn

    def _execute(self, statement: Any, params: dict[str, Any] | None = None) -> None:
        self._cursor(statement, params)

    def _row(self, name: str) -> dict[str, Any]:
        row = self._cursor(query(name), None).fetchone()
        if row is None:
            raise _not_installed()
        return row

    def _cursor(
        self, statement: Any, params: dict[str, Any] | None
    ) -> psycopg.Cursor[dict[str, Any]]:
        with wrap_db_errors(conninfo=self.database_url):
            try:
                return self._connection().execute(statement, params)
            except psycopg.errors.UndefinedTable as exc:
                raise _not_installed() from exc


def _not_installed() -> PgflowError:
    return PgflowError(
        "the test clock is not installed in this database",
        hint="call clock.install() first (the flow_runner fixture does)",
    )
