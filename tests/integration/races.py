"""Deterministic two-transaction races against a real Postgres.

:func:`race` runs ``first`` in a transaction it leaves open (so its locks are held), starts
``second`` on another connection in a thread, waits until that backend waits on a lock (or,
when nothing makes it wait, until it has finished), and only then commits the first. The
interleaving is therefore fixed, not left to the scheduler: "the second operation ran
against the first one's uncommitted work, then saw it commit".
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.rows import dict_row

WAIT_SECONDS = 30  # a readiness bound, generous for a loaded machine; never a sleep


@dataclass
class Outcome:
    """What the second operation did: its value or its error, and whether it had to wait."""

    value: Any = None
    error: BaseException | None = None
    blocked: bool = False

    def result(self) -> Any:
        """The value, or re-raise the error the second operation raised."""
        if self.error is not None:
            raise self.error
        return self.value


def race(
    db_url: str,
    first: Callable[[psycopg.Connection[Any]], Any],
    second: Callable[[psycopg.Connection[Any]], Any],
    *,
    while_blocked: Callable[[psycopg.Connection[Any], int], None] | None = None,
) -> Outcome:
    """Run ``first`` uncommitted, then ``second`` concurrently; commit ``first``; report.

    ``while_blocked(watcher, pid)``, when given, runs while the second operation (backend
    ``pid``) waits on a lock, before the commit; it fails the race if it never waited.
    """
    with (
        psycopg.connect(db_url, autocommit=True, row_factory=dict_row) as watcher,
        psycopg.connect(db_url, row_factory=dict_row) as holder,
        psycopg.connect(db_url, autocommit=True, row_factory=dict_row) as racer,
    ):
        # an implicit transaction first, so a `with conn.transaction()` inside `first`
        # is a savepoint and the transaction stays open after it
        holder.execute("select 1")
        first(holder)
        outcome = Outcome()

        def run_second() -> None:
            try:
                outcome.value = second(racer)
            except BaseException as exc:  # noqa: BLE001 - handed back to the test thread
                outcome.error = exc

        thread = threading.Thread(target=run_second, daemon=True)
        thread.start()
        try:
            outcome.blocked = _wait_blocked_or_done(watcher, racer.info.backend_pid, thread)
            if while_blocked is not None:
                assert outcome.blocked, "the second operation never waited on a lock"
                while_blocked(watcher, racer.info.backend_pid)
        finally:
            holder.commit()
            thread.join(WAIT_SECONDS)
            if thread.is_alive():
                watcher.execute("select pg_cancel_backend(%s)", [racer.info.backend_pid])
                thread.join(WAIT_SECONDS)
                raise AssertionError("the second operation was still waiting after the commit")
        return outcome


def _wait_blocked_or_done(
    watcher: psycopg.Connection[Any], pid: int, thread: threading.Thread
) -> bool:
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        if not thread.is_alive():
            return False
        row = watcher.execute(
            "select wait_event_type from pg_stat_activity where pid = %s", [pid]
        ).fetchone()
        if row is not None and row["wait_event_type"] == "Lock":
            return True
        time.sleep(0.01)
    raise AssertionError("the second operation neither finished nor waited on a lock")


def orphans(conn: psycopg.Connection[Any]) -> dict[str, int]:
    """Step-state and task rows whose run no longer exists (there must be none)."""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            """
            select
              (select count(*) from pgflow.step_tasks t
               where not exists (select 1 from pgflow.runs r where r.run_id = t.run_id))
                as tasks,
              (select count(*) from pgflow.step_states s
               where not exists (select 1 from pgflow.runs r where r.run_id = s.run_id))
                as states
            """
        )
        row = cur.fetchone()
    assert row is not None
    return {"tasks": row["tasks"], "states": row["states"]}
