"""Storing and fetching values by reference: what workers and clients share.

:class:`Stores` knows the store a process writes to and the ones it can read from (Postgres'
own always). Writing: the value's JSON text goes to the store, then ``seal_blob`` records it
with its run and returns the reference. Reading: the bytes come back into one buffer, their
size (and, from an external store, their SHA-256) are checked against the reference, and
only then are they decoded.
Every function has a sync and an async twin; the async ones run external stores, hashing
and decoding in a thread, never on the event loop.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import sys
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from pgflow.blobs import postgres as pg
from pgflow.blobs.refs import PG_STORE, Ref
from pgflow.blobs.stores import BlobKey, BlobStore, check_store_name
from pgflow.errors import InputDecodeError, ValueMissingError, ValueStoreError
from pgflow.sql import query

__all__ = [
    "MIN_INLINE_BYTES",
    "Limits",
    "Stores",
    "afetch",
    "alimits",
    "astore",
    "decode_exact",
    "fetch",
    "limits",
    "store",
]

MIN_INLINE_BYTES: Final = 1024
"""The smallest inline limit the database accepts: a value this small never goes by reference,
so writers need not know the limit for it."""

Decode = Callable[[str], Any]


@dataclass(frozen=True, slots=True)
class Limits:
    """The owner's limits on values (``pgflow.value_limits()``).

    Attributes:
        inline_limit_bytes: larger values are stored by reference.
        max_payload_bytes: no run input or task output may be larger.
    """

    inline_limit_bytes: int
    max_payload_bytes: int


def limits(conn: pg.Connection) -> Limits:
    """Read the limits (any pgflow role may)."""
    row = conn.execute(query("value_limits")).fetchone()
    assert row is not None
    return Limits(int(row[0]), int(row[1]))


async def alimits(conn: pg.AsyncConnection) -> Limits:
    """Read the limits (any pgflow role may)."""
    row = await (await conn.execute(query("value_limits"))).fetchone()
    assert row is not None
    return Limits(int(row[0]), int(row[1]))


class Stores:
    """The store a process writes large values to, and those it reads from.

    Args:
        store: an external store (values go there, and are read from there), or None for
            Postgres' own only.

    Raises:
        ConfigurationError: the store's name is invalid.
    """

    def __init__(self, store: BlobStore | None = None) -> None:
        if store is not None:
            check_store_name(getattr(store, "name", None))
        self.external = store

    def writer(self, external_ok: bool) -> BlobStore | None:
        """The store to write to; None for Postgres' own (also when SQL must read it)."""
        return self.external if external_ok else None

    def reader(self, ref: Ref, key: BlobKey) -> BlobStore | None:
        """The store holding ``ref``; None for Postgres' own.

        Raises:
            ValueStoreError: it names a store this process was not given.
        """
        if ref.store == PG_STORE:
            return None
        if self.external is not None and self.external.name == ref.store:
            return self.external
        raise ValueStoreError(
            f"stored value {key.name} is kept in store {ref.store!r}, which this process was "
            "not given",
            hint=f"pass blob_store= a store named {ref.store!r} (e.g. FilesystemStore(path, "
            f"name={ref.store!r})) to the Worker and Client that read it",
            run_id=key.run_id,
            store=ref.store,
        )


def _unreachable(store: BlobStore, key: BlobKey, exc: OSError) -> ValueStoreError:
    return ValueStoreError(
        f"store {store.name!r} ({store!r}) failed for stored value {key.name}: {exc}",
        hint="check that the store is reachable from this host (the directory mounted, the "
        "service up, the credentials valid); the attempt is retried as usual",
        run_id=key.run_id,
        store=store.name,
    )


def _sealed_params(data: bytes | bytearray) -> tuple[memoryview, str]:
    return memoryview(data), hashlib.sha256(data).hexdigest()


def store(conn: pg.Connection, stores: Stores, run_id: uuid.UUID, data: bytes,
          *, external_ok: bool) -> dict[str, Any]:  # fmt: skip
    """Store a value's JSON text for ``run_id``; return its reference (as JSON).

    In Postgres' store the chunks and the seal share the caller's transaction: run it in
    one (``with conn.transaction()``).

    Raises:
        ValueStoreError: the store failed, or the database refused the value (PGF15/PGF08).
    """
    key, target = BlobKey(run_id, uuid.uuid4()), stores.writer(external_ok)
    view, digest = _sealed_params(data)
    if target is None:
        pg.write(conn, key, view)
    else:
        try:
            target.put(key, view)
        except OSError as exc:
            raise _unreachable(target, key, exc) from exc
    name = PG_STORE if target is None else target.name
    return pg.seal(conn, key, len(data), digest, name).as_json()


async def astore(conn: pg.AsyncConnection, stores: Stores, run_id: uuid.UUID, data: bytes,
                 *, external_ok: bool) -> dict[str, Any]:  # fmt: skip
    """The async twin of :func:`store` (external stores and hashing run in a thread)."""
    key, target = BlobKey(run_id, uuid.uuid4()), stores.writer(external_ok)
    view, digest = await asyncio.to_thread(_sealed_params, data)
    if target is None:
        await pg.awrite(conn, key, view)
    else:
        try:
            await asyncio.to_thread(target.put, key, view)
        except OSError as exc:
            raise _unreachable(target, key, exc) from exc
    name = PG_STORE if target is None else target.name
    return (await pg.aseal(conn, key, len(data), digest, name)).as_json()


def fetch(conn: pg.Connection, stores: Stores, run_id: uuid.UUID, ref: Ref,
          decode: Decode) -> Any:  # fmt: skip
    """Read, check and decode the value ``ref`` stands for in run ``run_id``.

    Raises:
        ValueStoreError: the store failed or does not know the value.
        ValueMissingError: the value is gone, or its bytes do not match the reference.
    """
    key = BlobKey(run_id, ref.blob_id)
    source = stores.reader(ref, key)
    if source is None:
        return _checked(key, ref, pg.read(conn, key, ref.size), decode)
    try:
        data = source.get(key, ref.size)
    except OSError as exc:
        raise _unreachable(source, key, exc) from exc
    return _checked(key, ref, data, decode)


async def afetch(conn: pg.AsyncConnection, stores: Stores, run_id: uuid.UUID, ref: Ref,
                 decode: Decode) -> Any:  # fmt: skip
    """The async twin of :func:`fetch` (external stores, hashing, decoding in a thread)."""
    key = BlobKey(run_id, ref.blob_id)
    source = stores.reader(ref, key)
    data: bytes | bytearray
    if source is None:
        data = await pg.aread(conn, key, ref.size)
    else:
        try:
            data = await asyncio.to_thread(source.get, key, ref.size)
        except OSError as exc:
            raise _unreachable(source, key, exc) from exc
    return await asyncio.to_thread(_checked, key, ref, data, decode)


def _checked(key: BlobKey, ref: Ref, data: bytes | bytearray, decode: Decode) -> Any:
    """Decode ``data`` once its size (and, outside Postgres, its SHA-256) match ``ref``.

    Postgres' own chunks are checked for order and size as they are read; a file or an
    object anyone with access to the store could have replaced is hashed too."""
    external = ref.store != PG_STORE
    if len(data) != ref.size or (external and hashlib.sha256(data).hexdigest() != ref.sha256):
        raise ValueMissingError(
            f"stored value {key.name} (store {ref.store!r}) does not match its reference: "
            f"{len(data)} bytes, expected {ref.size} with SHA-256 {ref.sha256[:12]}...; it was "
            "changed or damaged outside pgflow",
            hint="start the run again; never edit stored values by hand",
            run_id=key.run_id,
            store=ref.store,
        )
    text = data.decode("utf-8", "surrogatepass")
    if isinstance(data, bytearray):
        data.clear()  # the text replaces the bytes: never both and the value at once
    return decode(text)


def decode_exact(text: str) -> Any:
    """Decode JSON as the worker decodes task values (the standard library: integers stay
    exact). A value Python refuses raises :class:`InputDecodeError` naming why."""
    try:
        return json.loads(text)
    except RecursionError:
        reason = f"nested too deeply for Python's JSON decoder (about {sys.getrecursionlimit()})"
    except ValueError as exc:
        reason = f"Python refuses it: {str(exc).split(';')[0]}"
    raise InputDecodeError(
        f"a stored value ({len(text)} characters of JSON) cannot be decoded: {reason}",
        hint="fix what produced the value (the run input, or an output) and start a new run",
        reason=reason,
    )
