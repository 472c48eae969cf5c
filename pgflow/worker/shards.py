"""A worker serving every shard of a PL/Proxy set-up: one claim loop per shard.

``Worker(flows, shards=[url, ...])`` runs, on its event loop, one *lane* per shard: a
complete single-database worker on that shard's URL, with its own connection pool,
LISTEN connection, claim loop, heartbeat and ``concurrency`` slots. So:

- claims are fair across shards: each shard gets the same slots, whatever the others do;
- a shard that goes down stalls only its own lane: its claims and reports retry with
  backoff (``database unavailable`` ... ``database available again``) while the other
  lanes go on; one never reached at start-up is retried with backoff until it answers;
- a claim never spans shards: claiming through the proxy with RUN ON ALL would wait for
  every shard, so one shard down would stall every worker.

At start-up every shard that answers must have the same pgflow schema version, and none an
older one than this package; a shard that comes back later with an older one is not served
(an ERROR line says why and what to do) until it is upgraded. Schedules fire from the
first shard's lane only (a schedule is deployed to every shard, and its ticks must start
once). Log lines of a lane start with ``shard k:``.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from pgflow.db.connection import aconnect
from pgflow.db.errors import wrap_db_errors
from pgflow.db.retry import Backoff, is_transient
from pgflow.errors import ConfigurationError, PgflowError, SchemaError
from pgflow.migrations import migrations
from pgflow.sharding.shards import Shard, check_versions, on_shard, shard_list
from pgflow.sql import query

__all__ = ["ShardLanes", "shard_version", "worker_shards"]

logger = logging.getLogger("pgflow.worker")

RECONNECT_CAP = 10.0
"""The longest pause, in seconds, between two attempts to start a shard's lane."""

_LANE: contextvars.ContextVar[Shard | None] = contextvars.ContextVar("pgflow_shard", default=None)


class _ShardPrefix(logging.Filter):
    """Prefix the worker's log lines with the shard of the lane that logged them."""

    def filter(self, record: logging.LogRecord) -> bool:
        shard = _LANE.get()
        if shard is not None and not hasattr(record, "shard"):
            record.shard = shard.index
            record.msg = f"shard {shard.index}: {record.msg}"
        return True


_PREFIX = _ShardPrefix()


async def shard_version(shard: Shard) -> int | None:
    """The shard's pgflow schema version (None: not installed).

    Raises:
        DatabaseError: the shard cannot be reached (the message names it).
    """
    try:
        async with wrap_db_errors(), await aconnect(shard.url) as conn:
            found = await (await conn.execute(query("proxy_detect"))).fetchone()
            if not found or not found[1]:
                return None
            row = await (await conn.execute(query("schema_version"))).fetchone()
    except PgflowError as exc:
        raise on_shard(shard, exc) from exc
    return None if row is None or row[0] is None else int(row[0])


class ShardLanes:
    """Runs one single-database worker per shard (see the module docstring).

    Args:
        shards: the shards, in routing order.
        lane: builds the worker of one shard (a :class:`pgflow.Worker` on its URL).
        backoff_base: the first pause before starting a lane again, in seconds.
    """

    def __init__(
        self, shards: Sequence[Shard], lane: Callable[[Shard], Any], backoff_base: float
    ) -> None:
        self.shards = tuple(shards)
        self.workers = [lane(shard) for shard in self.shards]
        self._backoff_base = backoff_base
        self._stopping = False
        self._immediate = False
        self._wake: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._expected: int | None = None

    async def run(self, *, until_idle: bool, max_tasks: int | None) -> None:
        """Run every lane until stopped (or, with ``until_idle``, until each is idle)."""
        self._loop, self._wake = asyncio.get_running_loop(), asyncio.Event()
        if _PREFIX not in logger.filters:
            logger.addFilter(_PREFIX)
        await self._check_start()
        lanes = [
            asyncio.create_task(self._lane(shard, worker, until_idle, max_tasks))
            for shard, worker in zip(self.shards, self.workers, strict=True)
        ]
        try:
            await asyncio.gather(*lanes)
        finally:
            for task in lanes:
                task.cancel()
            await asyncio.gather(*lanes, return_exceptions=True)

    def stop(self, *, immediate: bool = False) -> None:
        """Stop every lane (thread-safe); see :meth:`pgflow.Worker.stop`."""
        self._stopping, self._immediate = True, self._immediate or immediate
        for worker in self.workers:
            worker.stop(immediate=immediate)
        loop, wake = self._loop, self._wake
        if loop is not None and wake is not None and not loop.is_closed():
            loop.call_soon_threadsafe(wake.set)

    async def _check_start(self) -> None:
        """Refuse to start on shards at different or older schema versions, or when no
        shard answers (a shard that is merely down is retried by its lane)."""
        found = await asyncio.gather(
            *(shard_version(s) for s in self.shards), return_exceptions=True
        )
        answered: list[tuple[Shard, int | None]] = []
        for shard, result in zip(self.shards, found, strict=True):
            if isinstance(result, BaseException):
                if not is_transient(result):
                    raise result
                continue
            answered.append((shard, result))
        if not answered:
            first = found[0]
            assert isinstance(first, BaseException)
            raise first
        self._expected = check_versions(answered)
        for shard, version in answered:
            _refuse_older(shard, version)

    async def _lane(
        self, shard: Shard, worker: Any, until_idle: bool, max_tasks: int | None
    ) -> None:
        _LANE.set(shard)  # this task's context: every log line of the lane names the shard
        backoff, down = Backoff(self._backoff_base, cap=RECONNECT_CAP), False
        while not self._stopping:
            try:
                await self._check_lane(shard)
                if down:
                    logger.info("reachable again; serving it", extra={"action": "shard_up"})
                down = False
                await worker.run_async(until_idle=until_idle, max_tasks=max_tasks)
                return
            except PgflowError as exc:
                if not is_transient(exc):  # a wrong schema, privileges: say so, try again later
                    logger.error("not served: %s (%s)", exc.message, exc.hint)
                    down = True
                    await self._pause(RECONNECT_CAP)
                    continue
                if not down:
                    logger.warning(
                        "unavailable (%s); its runs wait, the other shards go on; retrying "
                        "with backoff",
                        exc.message,
                        extra={"action": "shard_down"},
                    )
                down = True
                await self._pause(backoff.next_delay())

    async def _check_lane(self, shard: Shard) -> None:
        version = await shard_version(shard)
        _refuse_older(shard, version)
        if version != self._expected:
            logger.warning(
                "has pgflow schema version %s, the other shards %s: finish upgrading every "
                "shard (`pgflow install --proxy ...`)",
                version,
                self._expected,
            )

    async def _pause(self, seconds: float) -> None:
        assert self._wake is not None
        try:
            async with asyncio.timeout(seconds):
                await self._wake.wait()
        except TimeoutError:
            pass


def _refuse_older(shard: Shard, version: int | None) -> None:
    """Refuse a shard without pgflow, or with an older schema than this worker needs."""
    latest = migrations()[-1].id
    if version is None:
        raise SchemaError(
            f"{shard.label} has no pgflow schema",
            hint="install it: `pgflow install --proxy --shard URL ...` (or `pgflow install "
            "--database-url URL` on this one)",
        )
    if version < latest:
        raise SchemaError(
            f"{shard.label} has pgflow schema version {version}; this worker needs {latest}",
            hint="upgrade every shard: `pgflow install --proxy --shard URL ...` (or "
            "`pgflow install --database-url URL` on this one)",
        )


def worker_shards(
    shards: Iterable[str] | None, database_url: str | None, pool: object, listen_url: str | None
) -> tuple[Shard, ...] | None:
    """Check ``Worker(shards=...)``: a list of URLs, and no single-database options.

    Raises:
        ConfigurationError: a string instead of a list, an empty or duplicate list, or
            ``database_url``, ``pool`` or ``listen_url`` given as well.
    """
    if shards is None:
        return None
    if isinstance(shards, str):
        raise ConfigurationError(
            f"Worker shards must be a list of database URLs, got the string {shards!r}",
            hint="pass shards=[url, url, ...] (the CLI takes --shard URL, repeated)",
        )
    if database_url is not None or pool is not None or listen_url is not None:
        raise ConfigurationError(
            "a Worker takes either shards or database_url (pool, listen_url), not both",
            hint="a sharded worker connects to each shard's URL and LISTENs there; pass "
            "shards=[...] alone",
        )
    return shard_list(shards)
