"""Values by reference for :class:`pgflow.Client` and :class:`pgflow.AsyncClient`.

``start``: a run input over the owner's ``inline_limit_bytes`` is stored first, under the
run id the client picks, and ``start_flow`` receives its reference, all in one transaction
(so a failed start leaves nothing behind in Postgres). ``output`` and ``input``: a run read
with ``get_run`` holds references in place of its large values (reading never fails because
a run is big); these fetch the values they stand for. The sync and async twins differ only
in their ``await``s (docs/large-values.md).
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

from psycopg.types.json import Jsonb

from pgflow._decode import decode_text_for_reading
from pgflow.blobs import values as io
from pgflow.blobs.postgres import AsyncConnection, Connection
from pgflow.blobs.refs import ELEMENTS, VALUE, Places, collect, substitute
from pgflow.dsl.flow import Flow
from pgflow.errors import InvalidInputError
from pgflow.models import Run

__all__ = [
    "ainput_stored",
    "aresolve",
    "input_stored",
    "input_value",
    "output_value",
    "resolve",
]


def new_run_id() -> uuid.UUID:
    """A time-ordered run id (UUID version 7), as ``start_flow`` makes them."""
    value = (time.time_ns() // 1_000_000 & (1 << 48) - 1) << 80
    value |= int.from_bytes(os.urandom(10), "big")
    value = value & ~(0xF << 76) | 0x7 << 76  # version 7
    value = value & ~(0x3 << 62) | 0x2 << 62  # RFC 4122 variant
    return uuid.UUID(int=value)


def _encoded(params: dict[str, Any]) -> bytes | None:
    """The start's input as JSON, when it may be large enough to store by reference."""
    jsonb: Jsonb = params["input"]
    data = jsonb.dumps(jsonb.obj) if jsonb.dumps is not None else None
    if isinstance(data, str):
        data = data.encode()
    return data if data is not None and len(data) > io.MIN_INLINE_BYTES else None


def _external_ok(flow_or_slug: Flow | str) -> bool:
    """Whether a run input may go to an external store: no root step makes SQL read it
    (a map splitting it, a condition testing it). Unknown when starting by slug: no."""
    if not isinstance(flow_or_slug, Flow):
        return False
    roots = [s for s in flow_or_slug.steps if not s.deps]
    return not any(
        s.step_type == "map" or s.required_input_pattern is not None
        or s.forbidden_input_pattern is not None
        for s in roots
    )  # fmt: skip


def _too_large(params: dict[str, Any], size: int, limits: io.Limits) -> InvalidInputError:
    slug = params["flow_slug"]
    return InvalidInputError(
        f"flow {slug!r}: run input is {size} bytes, over the limit of "
        f"{limits.max_payload_bytes} bytes",
        hint="have the database owner raise the limit: "
        "select pgflow.set_setting('max_payload_bytes', N)",
        flow_slug=slug,
    )


def _with_ref(params: dict[str, Any], run_id: uuid.UUID, ref: dict[str, Any]) -> dict[str, Any]:
    return {**params, "run_id": run_id, "input": Jsonb(ref)}


@contextmanager
def input_stored(
    conn: Connection,
    stores: io.Stores,
    params: dict[str, Any],
    flow_or_slug: Flow | str,
    limits_of: Callable[[], io.Limits],
) -> Iterator[dict[str, Any]]:
    """The start's parameters, its input stored first when large (inside a transaction that
    the ``with`` block, which starts the run, shares). ``limits_of`` is called only for an
    input that may be large."""
    data = _encoded(params)
    limits = limits_of() if data is not None else None
    if data is None or limits is None or len(data) <= limits.inline_limit_bytes:
        yield params
        return
    if len(data) > limits.max_payload_bytes:
        raise _too_large(params, len(data), limits)
    run_id = params["run_id"] or new_run_id()
    with conn.transaction():
        ref = io.store(conn, stores, run_id, data, external_ok=_external_ok(flow_or_slug))
        yield _with_ref(params, run_id, ref)


@asynccontextmanager
async def ainput_stored(
    conn: AsyncConnection,
    stores: io.Stores,
    params: dict[str, Any],
    flow_or_slug: Flow | str,
    limits_of: Callable[[], Awaitable[io.Limits]],
) -> AsyncIterator[dict[str, Any]]:
    """The async twin of :func:`input_stored`."""
    data = _encoded(params)
    limits = await limits_of() if data is not None else None
    if data is None or limits is None or len(data) <= limits.inline_limit_bytes:
        yield params
        return
    if len(data) > limits.max_payload_bytes:
        raise _too_large(params, len(data), limits)
    run_id = params["run_id"] or new_run_id()
    async with conn.transaction():
        ref = await io.astore(conn, stores, run_id, data, external_ok=_external_ok(flow_or_slug))
        yield _with_ref(params, run_id, ref)


def output_value(run: Run, step_slug: str | None) -> tuple[Any, Places]:
    """A run's output (or one step's) and where references may stand in it.

    Raises:
        InvalidInputError: the run has no such step.
    """
    maps = frozenset(s.step_slug for s in run.steps if s.step_type == "map")
    if step_slug is None:
        return run.output, Places("members", maps)
    for step in run.steps:
        if step.step_slug == step_slug:
            return step.output, ELEMENTS if step_slug in maps else VALUE
    raise InvalidInputError(
        f"run {run.run_id} of flow {run.flow_slug!r} has no step {step_slug!r}",
        hint=f"its steps: {', '.join(s.step_slug for s in run.steps) or 'none read yet'}",
        run_id=run.run_id,
        flow_slug=run.flow_slug,
        step_slug=step_slug,
    )


def input_value(run: Run) -> tuple[Any, Places]:
    """A run's input and where a reference may stand in it (the value itself)."""
    return run.input, VALUE


def resolve(
    conn: Connection, stores: io.Stores, run_id: uuid.UUID, value: Any, places: Places
) -> Any:
    """``value`` with every reference at ``places`` replaced by the value it stands for.

    Raises:
        ValueStoreError: a store failed, or does not know a value.
        ValueMissingError: a value is gone or damaged.
    """
    refs = collect(value, places)
    fetched = {r.blob_id: io.fetch(conn, stores, run_id, r, decode_text_for_reading) for r in refs}
    return substitute(value, places, fetched) if refs else value


async def aresolve(
    conn: AsyncConnection, stores: io.Stores, run_id: uuid.UUID, value: Any, places: Places
) -> Any:
    """The async twin of :func:`resolve`."""
    refs = collect(value, places)
    fetched = {}
    for ref in refs:
        fetched[ref.blob_id] = await io.afetch(conn, stores, run_id, ref, decode_text_for_reading)
    return substitute(value, places, fetched) if refs else value
