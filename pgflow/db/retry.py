"""Transient database errors: which ones to retry, how long to wait, and what to log.

A worker outlives database hiccups: a deadlock or serialization failure is retried at once
(with a short backoff), a lost connection or a restarting server is retried with an
exponential backoff until it comes back. :class:`Health` logs one line when the database
becomes unavailable and one when it is back, whichever component noticed, so an outage
does not flood the log.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

import psycopg
from psycopg_pool import PoolTimeout

__all__ = ["Backoff", "Health", "is_transient", "retrying"]

logger = logging.getLogger("pgflow.worker")

T = TypeVar("T")

# 40001 serialization_failure, 40P01 deadlock_detected, 57P01..57P03 admin/crash shutdown
# and cannot_connect_now (a restarting server), 53300 too_many_connections, PGF20 a pgflow
# proxy that cannot reach the shard of the call (docs/sharding.md).
_TRANSIENT_SQLSTATES = frozenset({"40001", "40P01", "57P01", "57P02", "57P03", "53300", "PGF20"})


def is_transient(exc: BaseException) -> bool:
    """Whether retrying the same database call later may succeed.

    True for lost or refused connections (``OperationalError`` without a SQLSTATE or with
    class 08), deadlocks, serialization failures, server shutdowns and pool timeouts.
    pgflow errors that wrap one of those (``__cause__``) count too.
    """
    if isinstance(exc, PoolTimeout):
        return True
    if isinstance(exc, psycopg.Error):
        state = exc.sqlstate
        if state is None:
            return isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError)
        return state.startswith("08") or state in _TRANSIENT_SQLSTATES
    cause = exc.__cause__
    return cause is not None and cause is not exc and is_transient(cause)


@dataclass
class Backoff:
    """Exponential backoff with jitter: ``base * 2**n`` seconds, capped at ``cap``.

    Attributes:
        base: the first delay in seconds (0 retries at once, for tests).
        cap: the longest delay in seconds.
    """

    base: float = 0.05
    cap: float = 5.0
    _attempt: int = field(default=0, repr=False)

    def next_delay(self) -> float:
        """Return the next delay (between half and all of the nominal one) and advance."""
        nominal = min(self.cap, self.base * 2**self._attempt)
        self._attempt = min(self._attempt + 1, 30)
        return float(nominal * random.uniform(0.5, 1.0))

    def reset(self) -> None:
        """Start again from ``base`` (after a success)."""
        self._attempt = 0


class Health:
    """Tracks whether the database is reachable, logging only the changes.

    Each component (claims, reports, listener, heartbeat) reports its failures and
    successes under its own name; the database counts as unavailable while any of them
    fails. One WARNING line marks the start of an outage, one INFO line its end.
    """

    def __init__(self) -> None:
        self._failing: set[str] = set()
        self._down_since: float | None = None

    @property
    def is_down(self) -> bool:
        """Whether some component currently cannot use the database."""
        return bool(self._failing)

    def failed(self, component: str, exc: BaseException) -> None:
        """Record a transient failure of ``component``."""
        if not self._failing:
            self._down_since = time.monotonic()
            logger.warning(
                "database unavailable (%s: %s); retrying with backoff",
                component,
                _first_line(exc),
                extra={"action": "database_down", "component": component},
            )
        else:
            logger.debug("%s still failing: %s", component, _first_line(exc))
        self._failing.add(component)

    def ok(self, component: str) -> None:
        """Record a success of ``component``."""
        if component not in self._failing:
            return
        self._failing.discard(component)
        if not self._failing and self._down_since is not None:
            down_for = time.monotonic() - self._down_since
            logger.info(
                "database available again after %.1fs",
                down_for,
                extra={"action": "database_up", "down_seconds": round(down_for, 3)},
            )
            self._down_since = None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


async def retrying(
    operation: Callable[[], Awaitable[T]],
    *,
    component: str,
    health: Health,
    backoff: Backoff,
    on_failure: Callable[[], Awaitable[None]] | None = None,
) -> T:
    """Run ``operation`` until it succeeds, retrying transient errors with backoff.

    Args:
        operation: the database call (a fresh coroutine per attempt).
        component: who is calling, for :class:`Health`.
        health: where failures and recoveries are recorded.
        backoff: the delays between attempts (reset after a success).
        on_failure: awaited after each transient failure (e.g. to check the pool).

    Raises:
        Exception: the first non-transient error, unchanged. Cancel the calling task to
            stop retrying.
    """
    while True:
        try:
            result = await operation()
        except Exception as exc:
            if not is_transient(exc):
                raise
            health.failed(component, exc)
            if on_failure is not None:
                await on_failure()
            await asyncio.sleep(backoff.next_delay())
            continue
        health.ok(component)
        backoff.reset()
        return result
