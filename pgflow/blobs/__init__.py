"""Values stored by reference: run inputs and outputs too large to keep inline.

See docs/large-values.md. The public part: the store interface :class:`BlobStore`, its key
:class:`BlobKey`, Postgres' own store :class:`PostgresStore` (the default) and
:class:`FilesystemStore`; pass a store to ``Worker(blob_store=...)`` and
``Client(blob_store=...)``.
"""

from __future__ import annotations

from pgflow.blobs.postgres import PostgresStore
from pgflow.blobs.refs import REF_KEY, Ref
from pgflow.blobs.stores import BlobKey, BlobStore, FilesystemStore

__all__ = ["REF_KEY", "BlobKey", "BlobStore", "FilesystemStore", "PostgresStore", "Ref"]
