"""The worker's task listener registration: notifications are sent only to registered workers.

A transaction that makes tasks claimable notifies ``pgflow_tasks`` only while a live task
listener of that flow is *waiting* (docs/workers.md, "How a worker picks up work"). A worker
that LISTENs therefore registers (``pgflow.listen_tasks``, under its worker id) each time
its LISTEN is in place; its heartbeat renews the registration, and ``worker_stopped``
removes it. ``claim_tasks`` keeps it waiting after a short claim and not waiting after a
full one: a worker with full claims claims again as soon as it has room, so it needs no
notification.

The claim loop owes a barrier (``pgflow.sync_tasks``) each time the registration starts
waiting again: after (re)registering, and after a short claim that follows a full one. The
barrier waits for the transactions that may have skipped the notification without seeing
the registration; the claim after it finds their tasks (:class:`pgflow.worker.loop.Supervisor`).

A registration that may have lapsed (the heartbeat came more than a TTL after the last
renewal: the process stalled) is made again, which owes a barrier again. A schema older
than registration notifies always, and a role without ``EXECUTE`` on ``listen_tasks`` cannot
register: either way the worker just LISTENs (and polls) as before.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import psycopg
from psycopg import errors

from pgflow.worker.store import WorkerStore

__all__ = ["TaskRegistration", "registration_ttl"]

logger = logging.getLogger("pgflow.worker")


def registration_ttl(heartbeat_interval: float) -> int:
    """Seconds a registration lives: three heartbeats, at least a minute, at most a day."""
    return int(min(86400, max(60, 3 * heartbeat_interval)))


class TaskRegistration:
    """Registers the worker as a task listener and runs its barrier.

    Args:
        store: the worker's SQL calls.
        ttl: seconds the registration lives unless renewed (see :func:`registration_ttl`).
        on_registered: called after each registration: the claim loop owes a barrier.
    """

    def __init__(self, store: WorkerStore, ttl: int, on_registered: Callable[[], None]) -> None:
        self._store = store
        self._ttl = ttl
        self._on_registered = on_registered
        self._renewed_at = 0.0
        self.active = False
        """Registered: the claim loop runs the barrier when it starts waiting again."""

    async def register(self) -> None:
        """Register (after each LISTEN); the claim loop then owes a barrier.

        Raises:
            psycopg.Error: a transient failure (the caller reconnects and tries again).
        """
        started = time.monotonic()
        try:
            await self._store.listen_tasks(self._ttl)
        except (errors.UndefinedFunction, errors.InsufficientPrivilege) as exc:
            self._give_up(exc)
            return
        self._renewed_at, self.active = started, True
        self._on_registered()

    async def renewed(self, started: float) -> None:
        """The heartbeat that began at ``started`` renewed the registration if it was still
        live; register again when it may have lapsed."""
        if not self.active:
            return
        if time.monotonic() - self._renewed_at >= 0.9 * self._ttl:
            await self.register()
        else:
            self._renewed_at = started

    async def sync(self) -> bool:
        """Run the barrier; False when it gave up (or cannot run: see the module docstring)."""
        try:
            return await self._store.sync_tasks()
        except (errors.UndefinedFunction, errors.InsufficientPrivilege) as exc:
            self._give_up(exc)
            return False

    def _give_up(self, exc: psycopg.Error) -> None:
        self.active = False
        logger.warning(
            "cannot register as a task listener (%s): this worker relies on notifications "
            "sent to unregistered listeners and on its poll (docs/workers.md)",
            str(exc).strip().splitlines()[0],
            extra={"action": "listener_unregistered"},
        )
