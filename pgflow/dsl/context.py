"""The :class:`Context` a handler can ask for by annotating a parameter with it."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager, AbstractContextManager
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import psycopg

__all__ = ["Context", "Flag"]


class Flag:
    """A flag the worker sets once; handlers test it or wait for it, async or sync.

    Like :class:`threading.Event` for sync code and :class:`asyncio.Event` for async code,
    at once: ``set()`` and ``is_set()`` work from any thread, ``await flag.wait()`` in an
    async handler, ``flag.sync_wait(timeout)`` in a sync one (it blocks its thread)::

        while not ctx.cancelled.is_set():         # poll it between units of work
            do_one_unit()
        if ctx.cancelled.sync_wait(5.0):          # sync: sleep 5 s unless cancelled first
            return None
        if await ctx.cancelled.wait(timeout=5):   # async: the same without blocking
            return None
    """

    __slots__ = ("_event", "_is_set", "_waiters")

    # One lock for every flag: each holds it for a few operations, and a worker makes two
    # flags per task, so a lock (and a threading.Event) of their own cost more than it saves.
    _lock = threading.Lock()

    def __init__(self) -> None:
        self._is_set = False
        self._event: threading.Event | None = None  # made by the first sync_wait()
        self._waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = []

    def __repr__(self) -> str:
        return f"<Flag {'set' if self.is_set() else 'unset'}>"

    def is_set(self) -> bool:
        """Whether the flag is set."""
        return self._is_set

    def set(self) -> None:
        """Set the flag, waking every waiter (sync and async); safe from any thread."""
        with Flag._lock:
            if self._is_set:
                return
            self._is_set = True
            event = self._event
            waiters, self._waiters = self._waiters, []
        if event is not None:
            event.set()
        for loop, future in waiters:
            if not loop.is_closed():
                loop.call_soon_threadsafe(_resolve, future)

    async def wait(self, timeout: float | None = None) -> bool:
        """Wait until the flag is set; False if ``timeout`` seconds passed first."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        with Flag._lock:
            if self._is_set:
                return True
            self._waiters.append((loop, future))
        try:
            async with asyncio.timeout(timeout):
                await future
        except TimeoutError:
            return self.is_set()
        finally:
            with Flag._lock:
                if (loop, future) in self._waiters:
                    self._waiters.remove((loop, future))
        return True

    def sync_wait(self, timeout: float | None = None) -> bool:
        """Block this thread until the flag is set; False if ``timeout`` passed first.

        For sync handlers (they run in the worker's threads); never call it on the
        event loop, where it would block every async handler: use ``await wait()``.
        """
        with Flag._lock:
            if self._is_set:
                return True
            if self._event is None:
                self._event = threading.Event()
            event = self._event
        return event.wait(timeout)


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def _no_database() -> AbstractAsyncContextManager[psycopg.AsyncConnection[Any]]:
    raise RuntimeError(
        "this Context has no database pool; Context.connection() works inside a pgflow Worker"
    )


def _no_sync_database() -> AbstractContextManager[psycopg.Connection[Any]]:
    raise RuntimeError(
        "this Context has no database; Context.sync_connection() works inside a pgflow Worker"
    )


@dataclass(frozen=True, slots=True, init=False)
class Context:
    """What a running task knows about itself.

    Attributes:
        run_id: the run this task belongs to.
        flow_slug: the flow's slug.
        step_slug: the step's slug.
        task_index: 0 for single steps; the element index for map steps.
        attempt: 1 on the first attempt, 2 on the first retry, ...
        flow_input: the run's input (JSON value as stored in Postgres). Map tasks are
            claimed without it (a map of a million elements would carry it a million
            times): the first access fetches it, blocking; an async handler awaits
            :meth:`load_flow_input` instead, or names a parameter ``input``. A run input
            stored by reference is fetched the same way (docs/large-values.md).
        env: the worker's environment. Secrets belong here, never in run input.
        logger: a logger whose records carry run, flow, step and task.
        shutdown: set when the worker is shutting down or the task's deadline passed;
            long handlers should check it and stop early (their result is still stored).
        cancelled: set when the task may no longer run: its run was cancelled or failed,
            or its step was skipped. Whatever the handler returns is then discarded; an
            async handler still running ``cancel_grace`` seconds later is cancelled.
            See docs/workers.md, "Cancellation".
    """

    run_id: UUID
    flow_slug: str
    step_slug: str
    task_index: int
    attempt: int
    env: Mapping[str, str]
    logger: logging.Logger | logging.LoggerAdapter[logging.Logger]
    shutdown: Flag
    cancelled: Flag
    _connect: Callable[[], AbstractAsyncContextManager[psycopg.AsyncConnection[Any]]]
    _sync_connect: Callable[[], AbstractContextManager[psycopg.Connection[Any]]]
    _flow_input: list[Any]  # [value] once known
    _load_flow_input: Callable[[], Any] | None
    _aload_flow_input: Callable[[], Awaitable[Any]] | None

    def __init__(
        self,
        run_id: UUID,
        flow_slug: str,
        step_slug: str,
        task_index: int = 0,
        attempt: int = 1,
        flow_input: Any = None,
        env: Mapping[str, str] | None = None,
        logger: logging.Logger | logging.LoggerAdapter[logging.Logger] | None = None,
        shutdown: Flag | None = None,
        cancelled: Flag | None = None,
        _connect: Callable[
            [], AbstractAsyncContextManager[psycopg.AsyncConnection[Any]]
        ] = _no_database,
        _sync_connect: Callable[[], AbstractContextManager[psycopg.Connection[Any]]] = (
            _no_sync_database
        ),
        _load_flow_input: Callable[[], Any] | None = None,
        _aload_flow_input: Callable[[], Awaitable[Any]] | None = None,
    ) -> None:
        # with a loader, the value is fetched on first use; flow_input is then ignored
        known = [] if _load_flow_input is not None else [flow_input]
        values = (
            run_id, flow_slug, step_slug, task_index, attempt, {} if env is None else env,
            logger or logging.getLogger("pgflow.task"), shutdown or Flag(), cancelled or Flag(),
            _connect, _sync_connect, known, _load_flow_input, _aload_flow_input,
        )  # fmt: skip
        for set_field, value in zip(_FIELD_SETTERS, values, strict=True):
            set_field(self, value)

    @property
    def flow_input(self) -> Any:
        """The run's input (fetched on first access when the claim did not carry it)."""
        if not self._flow_input:
            assert self._load_flow_input is not None
            self._flow_input.append(self._load_flow_input())
        return self._flow_input[0]

    async def load_flow_input(self) -> Any:
        """The run's input, fetched without blocking the event loop when not known yet."""
        if not self._flow_input:
            if self._aload_flow_input is None:
                return self.flow_input
            value = await self._aload_flow_input()
            if not self._flow_input:
                self._flow_input.append(value)
        return self._flow_input[0]

    def connection(self) -> AbstractAsyncContextManager[psycopg.AsyncConnection[Any]]:
        """Borrow a connection from the worker's pool: ``async with ctx.connection() as conn``."""
        return self._connect()

    def sync_connection(self) -> AbstractContextManager[psycopg.Connection[Any]]:
        """Borrow a sync connection, for sync handlers: ``with ctx.sync_connection() as conn``.

        The worker opens a small sync pool the first time a handler asks for one.
        """
        return self._sync_connect()


# The slots' own setters, in field order: a worker builds a Context per task, and these
# cost a quarter of object.__setattr__ on a frozen dataclass.
_FIELD_SETTERS = tuple(Context.__dict__[name].__set__ for name in Context.__slots__)
