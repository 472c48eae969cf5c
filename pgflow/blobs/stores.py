"""Where the bytes of values stored by reference live: the store interface and a filesystem store.

A store moves the UTF-8 JSON text of a value in and out under a key ``(run_id, blob_id)``;
pgflow does everything else (deciding what to store, the reference, checking size and
SHA-256 on every read, recording the value in ``pgflow.blobs`` so that it goes with its
run). Postgres' own table is the default store (:class:`pgflow.blobs.PostgresStore`, named
``pg``); :class:`FilesystemStore` keeps values in a directory that every worker and client
mounts. Any object with the methods of :class:`BlobStore` is a store: an S3-compatible one
maps the key to an object name (``<prefix>/<run_id>/<blob_id>``), ``put`` to a (multipart)
upload, ``get`` to a ranged or streamed download into one buffer, ``delete`` to a batch
delete (docs/large-values.md).

Stores are called from worker threads, never on the event loop, and may block.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

from pgflow.errors import ConfigurationError, ValueMissingError

__all__ = ["BlobKey", "BlobStore", "FilesystemStore"]


@dataclass(frozen=True, slots=True)
class BlobKey:
    """Which value: the run it belongs to and its id within the run.

    Attributes:
        run_id: the run (every read names it: a value is never found under another run).
        blob_id: the value's id (random).
    """

    run_id: uuid.UUID
    blob_id: uuid.UUID

    @property
    def name(self) -> str:
        """``<run_id>/<blob_id>``: a path or object name made of two UUIDs only."""
        return f"{self.run_id}/{self.blob_id}"


@runtime_checkable
class BlobStore(Protocol):
    """Where values stored by reference keep their bytes.

    Attributes:
        name: recorded in each reference (``store``): a lower-case letter, then lower-case
            letters, digits or ``_``, at most 32. ``pg`` is Postgres' own; every worker and
            client that reads a value must be given a store of the name it was stored in.
    """

    name: str

    def put(self, key: BlobKey, data: memoryview) -> None:
        """Store ``data`` (a value's JSON text) under ``key``, durably, before returning.

        Raises:
            OSError: the store cannot be reached or refused the write.
        """
        ...

    def get(self, key: BlobKey, size: int) -> bytes | bytearray:
        """Return the ``size`` bytes stored under ``key``.

        Raises:
            ValueMissingError: nothing is stored under ``key``.
            OSError: the store cannot be reached.
        """
        ...

    def delete(self, keys: Sequence[BlobKey]) -> None:
        """Delete these values; keys with nothing stored are skipped.

        Raises:
            OSError: the store cannot be reached.
        """
        ...


class FilesystemStore:
    """Values in a directory shared by every worker and client (NFS, a mounted volume).

    Each value is one file ``<root>/<run_id>/<blob_id>``, written to a temporary name,
    flushed to disk and then renamed, so a reader never sees half a value.

    Args:
        root: the directory (created if missing).
        name: the store's name in references (default ``fs``).

    Raises:
        ConfigurationError: the name is not a valid store name, or is ``pg``.
    """

    def __init__(self, root: str | os.PathLike[str], name: str = "fs") -> None:
        check_store_name(name)
        self.root = Path(root)
        self.name = name

    def __repr__(self) -> str:
        return f"FilesystemStore({str(self.root)!r}, name={self.name!r})"

    def _path(self, key: BlobKey) -> Path:
        return self.root / str(key.run_id) / str(key.blob_id)

    def put(self, key: BlobKey, data: memoryview) -> None:
        """Write the value to a temporary file, fsync it, rename it into place."""
        folder = self._path(key).parent
        folder.mkdir(parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(dir=folder, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            os.replace(temporary, self._path(key))
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise

    def get(self, key: BlobKey, size: int) -> bytearray:
        """Read the value into one buffer of ``size`` bytes (one more to detect growth)."""
        buffer = bytearray(size + 1)
        try:
            with self._path(key).open("rb", buffering=0) as source, memoryview(buffer) as view:
                got = 0
                while got <= size and (n := source.readinto(view[got:])):
                    got += n
        except FileNotFoundError:
            raise ValueMissingError(
                f"stored value {key.name} is not in store {self.name!r} ({self.root})",
                hint="it was deleted outside pgflow, or this directory is not the one the "
                "writer used: every worker and client must mount the same directory",
                run_id=key.run_id,
                store=self.name,
            ) from None
        del buffer[got:]
        return buffer

    def delete(self, keys: Sequence[BlobKey]) -> None:
        """Remove the files, and each run's folder once it is empty."""
        folders = set()
        for key in keys:
            self._path(key).unlink(missing_ok=True)
            folders.add(self._path(key).parent)
        for folder in folders:
            try:
                folder.rmdir()
            except OSError:
                pass  # not empty (another value of the run), or gone


def check_store_name(name: object) -> None:
    """Refuse a store name references cannot carry, and ``pg`` for another store.

    Raises:
        ConfigurationError: naming the rule.
    """
    valid = isinstance(name, str) and name.isascii() and 1 <= len(name) <= 32
    valid = (
        valid
        and str(name)[0].islower()
        and all(c.islower() or c.isdigit() or c == "_" for c in str(name))
    )
    if not valid or name == "pg":
        raise ConfigurationError(
            f"{name!r} cannot name a value store",
            hint="use a lower-case letter, then lower-case letters, digits or _ (at most 32 "
            "characters); 'pg' is Postgres' own store",
        )
