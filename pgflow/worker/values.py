"""Values by reference in the worker: inputs fetched, outputs stored (docs/large-values.md).

Before a handler runs, every reference in its task's input is replaced by the value it
stands for (read into one buffer, checked against its size and SHA-256, decoded in a
thread). The run input is fetched only when the handler needs it: map tasks are claimed
without it. After the handler returns, its output is encoded once; over the owner's
``max_payload_bytes`` the attempt fails with ``OutputTooLarge`` before anything is written,
over ``inline_limit_bytes`` it is stored and reported as its reference. An output that a
map splits or a condition reads stays in Postgres' own store, which SQL can read.

Errors name the flow, step and run: a value that is gone (``ValueMissingError``), a store
that fails (``ValueStoreError``), one Python cannot decode (``InputDecodeError``); each
fails the attempt, retried as usual.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg_pool import AsyncConnectionPool

from pgflow._decode import Undecodable, decode_task_values
from pgflow._json import dumps
from pgflow.blobs import values as io
from pgflow.blobs.refs import VALUE, Places, Ref, collect, is_ref, substitute
from pgflow.db.errors import translate_error
from pgflow.dsl.step import StepDefinition
from pgflow.errors import ErrorContext, InputDecodeError, InvalidInputError, ValueStoreError
from pgflow.sql import query
from pgflow.worker.store import ClaimedTask

__all__ = ["OutputTooLarge", "TaskValues"]

SyncConnect = Callable[[], AbstractContextManager[psycopg.Connection[Any]]]
StepKey = tuple[str, str]
PARALLEL_FETCHES = 2  # stored values of one task read at once (each on its own connection)


class OutputTooLarge(Exception):
    """A handler's output is over ``max_payload_bytes`` (stored as error type OutputTooLarge)."""


@dataclass(frozen=True, slots=True)
class _Plan:
    """What the worker knows about one step's values, decided once."""

    input_places: Places  # where references may stand in its task input
    external_ok: bool  # its output may go to an external store (no SQL reads it)


def _plan(step: StepDefinition, steps: Mapping[StepKey, StepDefinition]) -> _Plan:
    if step.step_type == "map" or not step.deps:
        places = VALUE  # the run input or one element
    else:
        maps = {d for d in step.deps if _kind(steps, step.flow_slug, d) == "map"}
        places = Places("members", frozenset(maps))
    dependents = [
        s for s in steps.values() if s.flow_slug == step.flow_slug and step.slug in s.deps
    ]
    sql_reads = any(
        d.step_type == "map" or d.required_input_pattern is not None
        or d.forbidden_input_pattern is not None
        for d in dependents
    )  # fmt: skip
    return _Plan(places, not sql_reads)


def _kind(steps: Mapping[StepKey, StepDefinition], flow: str, slug: str) -> str:
    step = steps.get((flow, slug))
    return step.step_type if step is not None else "single"


def _where(task: ClaimedTask) -> str:
    return f"step {task.step_slug!r} of flow {task.flow_slug!r} (run {task.run_id})"


class TaskValues:
    """Fetches the stored values of tasks and stores their large outputs.

    Args:
        pool: the worker's async pool.
        sync_connect: a sync connection (``ctx.flow_input`` accessed from sync code).
        limits: the owner's limits, read when the worker started.
        stores: where values go and come from.
        steps: every step this worker runs, by ``(flow_slug, step_slug)``.
    """

    def __init__(
        self,
        pool: AsyncConnectionPool,
        sync_connect: SyncConnect,
        limits: io.Limits,
        stores: io.Stores,
        steps: Mapping[StepKey, StepDefinition],
    ) -> None:
        self._pool = pool
        self._sync_connect = sync_connect
        self.limits = limits
        self._stores = stores
        self._plans = {key: _plan(step, steps) for key, step in steps.items()}

    def _places(self, task: ClaimedTask) -> Places:
        plan = self._plans.get((task.flow_slug, task.step_slug))
        return plan.input_places if plan is not None else VALUE

    def flow_input_known(self, task: ClaimedTask) -> bool:
        """Whether the claim carried the run input as a plain value (no fetch needed)."""
        return not task.is_map and not is_ref(task.flow_input)

    async def task_input(self, task: ClaimedTask) -> Any:
        """The task's input with every reference replaced by its value."""
        return await self._resolve(task, task.input, self._places(task), "input")

    async def flow_input(self, task: ClaimedTask) -> Any:
        """The run input: from the claim, or (map tasks) fetched for this attempt."""
        value = task.flow_input
        if task.is_map:
            async with self._pool.connection() as conn:
                cur = conn.cursor()
                decode_task_values(cur)
                try:
                    await cur.execute(query("worker_task_flow_input"), _key(task))
                except psycopg.Error as exc:
                    raise translate_error(exc) from exc
                value = _decoded(task, (await cur.fetchone() or (None,))[0])
        return await self._resolve(task, value, VALUE, "flow input")

    def flow_input_sync(self, task: ClaimedTask) -> Any:
        """:meth:`flow_input` for sync code (``ctx.flow_input``): blocks its thread."""
        with self._sync_connect() as conn:
            value = task.flow_input
            if task.is_map:
                cur = conn.cursor()
                decode_task_values(cur)
                try:
                    cur.execute(query("worker_task_flow_input"), _key(task))
                except psycopg.Error as exc:
                    raise translate_error(exc) from exc
                value = _decoded(task, (cur.fetchone() or (None,))[0])
            refs = _refs(task, value, VALUE, "flow input")
            fetched = {r.blob_id: self._fetch_sync(conn, task, r, "flow input") for r in refs}
        return substitute(value, VALUE, fetched) if refs else value

    async def output(self, task: ClaimedTask, value: Any) -> tuple[Any, bytes | None]:
        """The output to report: ``(value, its JSON)``, or ``(reference, None)`` when large.

        Raises:
            OutputTooLarge: over ``max_payload_bytes`` (nothing was stored).
            ValueStoreError: the store failed.
        """
        encoded = dumps(value)
        if len(encoded) > self.limits.max_payload_bytes:
            raise _too_large(task, len(encoded), self.limits.max_payload_bytes)
        if len(encoded) <= self.limits.inline_limit_bytes:
            return value, encoded
        plan = self._plans.get((task.flow_slug, task.step_slug))
        external_ok = plan is not None and plan.external_ok
        try:
            async with self._pool.connection() as conn, conn.transaction():
                ref = await io.astore(
                    conn, self._stores, task.run_id, encoded, external_ok=external_ok
                )
        except psycopg.Error as exc:
            error = translate_error(exc)
            if isinstance(error, InvalidInputError):  # PGF08: the limit was lowered meanwhile
                raise OutputTooLarge(f"{_where(task)}: {error.message}") from exc
            raise error from exc
        except ValueStoreError as exc:
            raise _located(exc, task, "output") from exc
        return ref, None

    async def _resolve(self, task: ClaimedTask, value: Any, places: Places, what: str) -> Any:
        refs = _refs(task, value, places, what)
        if not refs:
            return value
        gate = asyncio.Semaphore(PARALLEL_FETCHES)  # reading one while checking another

        async def one(ref: Ref) -> Any:
            async with gate, self._pool.connection() as conn:
                return await self._fetch(conn, task, ref, what)

        got = await asyncio.gather(*(one(ref) for ref in refs))
        return substitute(value, places, {r.blob_id: v for r, v in zip(refs, got, strict=True)})

    async def _fetch(
        self, conn: psycopg.AsyncConnection[Any], task: ClaimedTask, ref: Ref, what: str
    ) -> Any:
        try:
            return await io.afetch(conn, self._stores, task.run_id, ref, io.decode_exact)
        except (ValueStoreError, InputDecodeError) as exc:
            raise _located(exc, task, what) from exc

    def _fetch_sync(
        self, conn: psycopg.Connection[Any], task: ClaimedTask, ref: Ref, what: str
    ) -> Any:
        try:
            return io.fetch(conn, self._stores, task.run_id, ref, io.decode_exact)
        except (ValueStoreError, InputDecodeError) as exc:
            raise _located(exc, task, what) from exc


def _refs(task: ClaimedTask, value: Any, places: Places, what: str) -> list[Ref]:
    try:
        return collect(value, places)
    except ValueStoreError as exc:
        raise _located(exc, task, what) from exc


def _key(task: ClaimedTask) -> dict[str, Any]:
    return {"run_id": task.run_id, "step_slug": task.step_slug,
            "task_index": task.task_index, "attempt": task.attempt}  # fmt: skip


def _decoded(task: ClaimedTask, value: Any) -> Any:
    if isinstance(value, Undecodable):
        raise InputDecodeError(
            f"the flow input of {_where(task)} cannot be decoded: {value.reason} "
            f"({value.size} bytes of JSON)",
            hint="fix what produced the run input and start a new run",
            flow_slug=task.flow_slug,
            step_slug=task.step_slug,
            run_id=task.run_id,
            reason=value.reason,
        )
    return value


def _located(
    exc: ValueStoreError | InputDecodeError, task: ClaimedTask, what: str
) -> ValueStoreError | InputDecodeError:
    """The same error, its message saying which task's which value."""
    context: ErrorContext = {"hint": exc.hint, "flow_slug": task.flow_slug,
                             "step_slug": task.step_slug, "run_id": task.run_id}  # fmt: skip
    message = f"the {what} of {_where(task)}: {exc.message}"
    if isinstance(exc, InputDecodeError):
        return InputDecodeError(message, task_index=task.task_index, reason=exc.reason, **context)
    return type(exc)(message, store=exc.store, **context)


def _too_large(task: ClaimedTask, size: int, limit: int) -> OutputTooLarge:
    return OutputTooLarge(
        f"{_where(task)}: output is {size} bytes, over the limit of {limit} bytes (setting "
        "max_payload_bytes); return less (store big data elsewhere and return its "
        "location), or have the database owner raise the limit: "
        "select pgflow.set_setting('max_payload_bytes', N)"
    )
