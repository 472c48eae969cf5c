"""Ctrl+C anywhere while a pooled connection is borrowed surfaces as ``KeyboardInterrupt``.

psycopg_pool's ``ConnectionPool.connection()`` sets its timer inside its ``try`` and reads
it in the ``finally``: an interrupt that lands on the line setting it turned into
``UnboundLocalError`` (the CI failure of ``pgflow start --wait`` under Ctrl+C: exit 1 and a
traceback instead of 130 and the "Interrupted" line). The test raises the interrupt at each
line that borrowing runs in turn, in pgflow's helper and in psycopg_pool's context manager,
deterministically (a trace function raises it), and checks what escapes every time.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

import psycopg_pool
import pytest
from psycopg_pool import ConnectionPool

from pgflow.db import connection

# pgflow's helper and psycopg_pool's context manager, not the pool's internals (an interrupt
# inside those, between taking a lock and its ``try``, can leave the lock held)
TRACED = {(connection.__file__, "borrowed"), (psycopg_pool.pool.__file__, "connection")}


@contextmanager
def interrupt_at(line_number: int) -> Iterator[list[int]]:
    """Raise KeyboardInterrupt at the ``line_number``-th line event in the traced files."""
    seen = [0]

    def local(frame: FrameType, event: str, arg: Any) -> Any:
        if event == "line":
            seen[0] += 1
            if seen[0] == line_number:
                raise KeyboardInterrupt
        return local

    def call(frame: FrameType, event: str, arg: Any) -> Any:
        return local if (frame.f_code.co_filename, frame.f_code.co_name) in TRACED else None

    sys.settrace(call)
    try:
        yield seen
    finally:
        sys.settrace(None)


def test_an_interrupt_at_any_line_of_borrowing_surfaces_as_keyboard_interrupt(
    db_url: str,
) -> None:
    escaped: dict[int, str] = {}
    with ConnectionPool(db_url, min_size=0, max_size=8, timeout=5, open=True) as pool:
        line = 1
        while True:
            error: BaseException | None = None
            with interrupt_at(line) as seen:
                try:
                    with connection.borrowed(pool) as conn:
                        conn.execute("select 1").fetchone()
                except BaseException as exc:  # noqa: BLE001 - what escapes is the point
                    error = exc
            if error is None:
                break  # past the last line: nothing was interrupted
            if not isinstance(error, KeyboardInterrupt):
                escaped[line] = f"{type(error).__name__}: {error}"
            line += 1
            if line > 200:  # pragma: no cover - a runaway loop is a failure too
                pytest.fail(f"still interrupting after {seen[0]} lines")
        assert line > 5  # borrowing ran some lines, each interrupted once
        with connection.borrowed(pool) as conn:  # and the pool still lends connections
            assert conn.execute("select 1").fetchone() == (1,)
    assert escaped == {}, escaped
