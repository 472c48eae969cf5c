"""How a worker learns that tasks are ready: LISTEN where it can, a short poll where it cannot.

LISTEN needs a server session that stays with the client. A connection through a pooler
in transaction mode (PgBouncer's ``pool_mode = transaction``) is handed a different server
connection for every transaction, so a LISTEN there would listen on a session that then
serves other clients, and the notifications would be lost. At start-up the worker asks one
of its pool's connections whether it goes through a pooler
(:func:`pgflow.db.connection.abehind_pooler`) and picks:

1. the database URL itself, when it does not go through a pooler (the common case);
2. else ``listen_url`` (``Worker(listen_url=...)``, ``--listen-url``, ``PGFLOW_LISTEN_URL``):
   a direct connection to the same database, for LISTEN only;
3. else no LISTEN: the worker polls every :data:`UNLISTENED_POLL_INTERVAL` seconds (or
   ``poll_interval`` if shorter), claims again as soon as its own reports are stored (they
   may have readied dependent steps), and says so at start-up with a WARNING.

Everything else (claims, reports, heartbeats, handlers' ``ctx.connection()``) keeps no
session state and works through the pooler (docs/scaling.md).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

from psycopg_pool import AsyncConnectionPool

from pgflow.db.connection import abehind_pooler
from pgflow.db.errors import describe_conninfo
from pgflow.db.retry import Health
from pgflow.db.target import configured_listen_url
from pgflow.worker.listener import TaskListener
from pgflow.worker.settings import WorkerSettings

__all__ = ["UNLISTENED_POLL_INTERVAL", "Wakeups", "plan_wakeups"]

logger = logging.getLogger("pgflow.worker")

UNLISTENED_POLL_INTERVAL = 0.25
"""Seconds between claims of an idle worker that cannot LISTEN (at most)."""


@dataclass(frozen=True, slots=True)
class Wakeups:
    """Where the worker LISTENs (``listen_url``), or that it polls (``listen_url`` None).

    Attributes:
        listen_url: the URL of the LISTEN connection; None: poll.
        pooled: the database URL goes through a connection pooler.
        explicit: ``listen_url`` was configured (not the database URL itself).
    """

    listen_url: str | None
    pooled: bool
    explicit: bool = False

    def settings(self, settings: WorkerSettings) -> WorkerSettings:
        """The worker's settings, with the short poll when it cannot LISTEN."""
        if self.listen_url is not None:
            return settings
        interval = min(settings.poll_interval, UNLISTENED_POLL_INTERVAL)
        return dataclasses.replace(settings, poll_interval=interval)

    def listener(
        self,
        flow_slugs: Iterable[str],
        on_wake: Callable[[], None],
        health: Health,
        settings: WorkerSettings,
        on_cancelled: Callable[[str], None],
        on_listening: Callable[[bool], None],
        on_listen: Callable[[], Awaitable[None]] | None = None,
    ) -> TaskListener | None:
        """The LISTEN connection's task, or None when the worker polls."""
        if self.listen_url is None:
            return None
        return TaskListener(
            self.listen_url, flow_slugs, on_wake, health,
            backoff_base=settings.retry_base_delay,
            on_cancelled=on_cancelled, on_listening=on_listening, on_listen=on_listen,
        )  # fmt: skip

    def describe(self) -> str:
        """For the start-up line: ``listen=...`` or ``poll=...``."""
        if self.listen_url is None:
            return "wake-ups=poll"
        where = describe_conninfo(self.listen_url) if self.explicit else "database"
        return f"wake-ups=LISTEN on {where}"

    def warn_if_polling(self, poll_interval: float) -> None:
        """Say at start-up that (and why) the worker polls instead of LISTENing."""
        if self.listen_url is not None:
            return
        logger.warning(
            "the database URL goes through a connection pooler (PgBouncer or similar) and no "
            "listen_url is set, so this worker cannot LISTEN: it polls for tasks every %gs; "
            "set --listen-url (PGFLOW_LISTEN_URL, Worker(listen_url=...)) to a direct "
            "Postgres URL for wake-ups within milliseconds (docs/scaling.md)",
            poll_interval,
            extra={"action": "worker_polling", "poll_interval": poll_interval},
        )


async def plan_wakeups(
    pool: AsyncConnectionPool, database_url: str, listen_url: str | None
) -> Wakeups:
    """Choose how the worker wakes up (see the module docstring); one round trip.

    Raises:
        ConfigurationError: ``listen_url`` (or ``PGFLOW_LISTEN_URL``) cannot be parsed.
    """
    direct = configured_listen_url(listen_url)
    async with pool.connection() as conn:
        pooled = await abehind_pooler(conn)
    if not pooled:
        return Wakeups(database_url, pooled=False)
    return Wakeups(direct, pooled=True, explicit=direct is not None)
