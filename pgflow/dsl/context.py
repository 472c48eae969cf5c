"""The :class:`Context` a handler can ask for by annotating a parameter with it."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from contextlib import AbstractAsyncContextManager, AbstractContextManager
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

import psycopg


def _no_database() -> AbstractAsyncContextManager[psycopg.AsyncConnection[Any]]:
    raise RuntimeError(
        "this Context has no database pool; Context.connection() works inside a pgflow Worker"
    )


def _no_sync_database() -> AbstractContextManager[psycopg.Connection[Any]]:
    raise RuntimeError(
        "this Context has no database; Context.sync_connection() works inside a pgflow Worker"
    )


@dataclass(frozen=True, slots=True)
class Context:
    """What a running task knows about itself.

    Attributes:
        run_id: the run this task belongs to.
        flow_slug: the flow's slug.
        step_slug: the step's slug.
        task_index: 0 for single steps; the element index for map steps.
        attempt: 1 on the first attempt, 2 on the first retry, ...
        flow_input: the run's input (JSON value as stored in Postgres).
        env: the worker's environment. Secrets belong here, never in run input.
        logger: a logger whose records carry run, flow, step and task.
        shutdown: set when the worker is shutting down or the task's deadline passed;
            long handlers should check it and stop early.
    """

    run_id: UUID
    flow_slug: str
    step_slug: str
    task_index: int = 0
    attempt: int = 1
    flow_input: Any = None
    env: Mapping[str, str] = field(default_factory=dict)
    logger: logging.Logger | logging.LoggerAdapter[logging.Logger] = field(
        default_factory=lambda: logging.getLogger("pgflow.task")
    )
    shutdown: asyncio.Event = field(default_factory=asyncio.Event)
    _connect: Callable[[], AbstractAsyncContextManager[psycopg.AsyncConnection[Any]]] = _no_database
    _sync_connect: Callable[[], AbstractContextManager[psycopg.Connection[Any]]] = _no_sync_database

    def connection(self) -> AbstractAsyncContextManager[psycopg.AsyncConnection[Any]]:
        """Borrow a connection from the worker's pool: ``async with ctx.connection() as conn``."""
        return self._connect()

    def sync_connection(self) -> AbstractContextManager[psycopg.Connection[Any]]:
        """Borrow a sync connection, for sync handlers: ``with ctx.sync_connection() as conn``.

        The worker opens a small sync pool the first time a handler asks for one.
        """
        return self._sync_connect()
