"""Postgres' own store (``pg``): values in ``pgflow.blob_chunks``, 1 MiB bytea rows.

Writing sends one chunk per call (``put_blob_chunk``, binary, no copy of the value beyond
the chunk being sent); reading asks for a few chunks at a time (``read_blob``) and copies
them into one preallocated buffer, so a value is never held twice over while it travels.
No large objects: the worker role needs nothing but EXECUTE on pgflow's functions.

The sync and async twins share everything but the ``await``s.
:class:`PostgresStore` is the :class:`~pgflow.blobs.stores.BlobStore` over a connection
factory; pgflow itself calls the functions below on the connection it already holds (so a
client stores a run input in the transaction that starts the run).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import Any, Final

import psycopg

from pgflow.blobs.refs import CHUNK_BYTES, PG_STORE, Ref, parse_ref
from pgflow.blobs.stores import BlobKey
from pgflow.errors import ValueMissingError
from pgflow.sql import query

__all__ = ["PostgresStore", "aread", "aseal", "awrite", "read", "seal", "write"]

READ_CHUNKS: Final = 4  # chunks per read_blob call: at most 4 MiB in one result

Connection = psycopg.Connection[Any]
AsyncConnection = psycopg.AsyncConnection[Any]


def _chunks(key: BlobKey, data: memoryview) -> list[dict[str, Any]]:
    """The parameters of each chunk's call (slices of ``data``: no copies)."""
    starts = range(0, max(len(data), 1), CHUNK_BYTES)
    return [
        {"run_id": key.run_id, "blob_id": key.blob_id, "seq": seq,
         "data": data[start : start + CHUNK_BYTES]}
        for seq, start in enumerate(starts)
    ]  # fmt: skip


def _seal_params(key: BlobKey, size: int, sha256: str, store: str) -> dict[str, Any]:
    return {"run_id": key.run_id, "blob_id": key.blob_id, "size": size, "sha256": sha256,
            "store": store}  # fmt: skip


def _read_params(key: BlobKey, from_seq: int) -> dict[str, Any]:
    return {"run_id": key.run_id, "blob_id": key.blob_id, "from_seq": from_seq,
            "max_chunks": READ_CHUNKS}  # fmt: skip


def _missing(key: BlobKey, got: int, size: int) -> ValueMissingError:
    return ValueMissingError(
        f"stored value {key.name} in Postgres holds {got} bytes, not {size}: chunks of it "
        "were deleted or changed outside pgflow",
        hint="start the run again (retry_run re-runs the step that stored it only if that "
        "step failed); never edit pgflow.blob_chunks by hand",
        run_id=key.run_id,
        store=PG_STORE,
    )


def _gone(key: BlobKey, exc: psycopg.Error) -> ValueMissingError:
    """``read_blob`` found no such value of the run (PGF15): deleted, or never stored."""
    return ValueMissingError(
        str(exc.diag.message_primary or exc),
        hint=exc.diag.message_hint or None,
        run_id=key.run_id,
        store=PG_STORE,
        sqlstate=exc.sqlstate,
    )


class _Assembler:
    """Copies chunks into one buffer of the value's size, checking their order."""

    def __init__(self, key: BlobKey, size: int) -> None:
        self.key, self.size = key, size
        self.buffer = bytearray(size)
        self.got = 0
        self.seq = 0

    def add(self, rows: Sequence[tuple[int, bytes]]) -> bool:
        """Add one call's rows; False when the value is complete (or nothing came)."""
        for seq, data in rows:
            if seq != self.seq or self.got + len(data) > self.size:
                raise _missing(self.key, self.got + len(data), self.size)
            self.buffer[self.got : self.got + len(data)] = data
            self.got += len(data)
            self.seq += 1
        return bool(rows) and self.got < self.size

    def result(self) -> bytearray:
        if self.got != self.size:
            raise _missing(self.key, self.got, self.size)
        return self.buffer


def write(conn: Connection, key: BlobKey, data: memoryview) -> None:
    """Write a value's chunks (seal it afterwards, in the same transaction)."""
    for params in _chunks(key, data):
        conn.execute(query("blob_put_chunk"), params)


async def awrite(conn: AsyncConnection, key: BlobKey, data: memoryview) -> None:
    """Write a value's chunks (seal it afterwards, in the same transaction)."""
    for params in _chunks(key, data):
        await conn.execute(query("blob_put_chunk"), params)


def seal(conn: Connection, key: BlobKey, size: int, sha256: str, store: str) -> Ref:
    """Record a stored value with its run; return its reference."""
    row = conn.execute(query("blob_seal"), _seal_params(key, size, sha256, store)).fetchone()
    assert row is not None
    return parse_ref(json.loads(row[0]))


async def aseal(conn: AsyncConnection, key: BlobKey, size: int, sha256: str, store: str) -> Ref:
    """Record a stored value with its run; return its reference."""
    cur = await conn.execute(query("blob_seal"), _seal_params(key, size, sha256, store))
    row = await cur.fetchone()
    assert row is not None
    return parse_ref(json.loads(row[0]))


def read(conn: Connection, key: BlobKey, size: int) -> bytearray:
    """Read a value of the ``pg`` store into one buffer (a few chunks per call).

    Raises:
        ValueStoreError: the run has no such value (PGF15).
        ValueMissingError: chunks of it are gone.
    """
    assembler = _Assembler(key, size)
    more = True
    while more:
        params = _read_params(key, assembler.seq)
        try:
            cur = conn.execute(query("blob_read"), params, binary=True)
        except psycopg.Error as exc:
            if exc.sqlstate != "PGF15":
                raise
            raise _gone(key, exc) from exc
        more = assembler.add(cur.fetchall())
    return assembler.result()


async def aread(conn: AsyncConnection, key: BlobKey, size: int) -> bytearray:
    """Read a value of the ``pg`` store into one buffer (a few chunks per call).

    Raises:
        ValueStoreError: the run has no such value (PGF15).
        ValueMissingError: chunks of it are gone.
    """
    assembler = _Assembler(key, size)
    more = True
    while more:
        params = _read_params(key, assembler.seq)
        try:
            cur = await conn.execute(query("blob_read"), params, binary=True)
        except psycopg.Error as exc:
            if exc.sqlstate != "PGF15":
                raise
            raise _gone(key, exc) from exc
        more = assembler.add(await cur.fetchall())
    return assembler.result()


class PostgresStore:
    """The default store: values in ``pgflow.blob_chunks`` (see the module docstring).

    Args:
        connect: returns a connection context manager (e.g. a pool's ``connection``).
    """

    name = PG_STORE

    def __init__(self, connect: Callable[[], AbstractContextManager[Connection]]) -> None:
        self._connect = connect

    def put(self, key: BlobKey, data: memoryview) -> None:
        """Write the chunks in a transaction of their own (seal it afterwards)."""
        with self._connect() as conn, conn.transaction():
            write(conn, key, data)

    def get(self, key: BlobKey, size: int) -> bytearray:
        """Read a sealed value."""
        with self._connect() as conn:
            return read(conn, key, size)

    def delete(self, keys: Sequence[BlobKey]) -> None:
        """Nothing to do: Postgres deletes a run's values with the run."""
