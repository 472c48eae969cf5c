"""Deleting the files of an external store's values once their runs are gone.

Postgres deletes a run's values of its own store with the run (prune, retention,
``delete_flow_and_data``); for an external store it leaves a tombstone per value, since it
cannot reach files or objects. A worker given such a store (``Worker(blob_store=...)``)
sweeps them every ``retention_interval`` seconds and at start-up: it reads a batch of
tombstones, deletes those values from the store, then forgets the tombstones. Two workers
sweeping at once delete some files twice, which is harmless; a failing store is logged and
tried again next time (:mod:`pgflow.worker.periodic`).
"""

from __future__ import annotations

import asyncio
import logging

from pgflow.blobs.stores import BlobKey, BlobStore
from pgflow.sql import query
from pgflow.worker.periodic import Periodic
from pgflow.worker.store import WorkerStore

__all__ = ["BATCH", "TombstoneSweeper"]

BATCH = 500  # values per round trip
MAX_BATCHES = 200  # per interval

logger = logging.getLogger("pgflow.worker")


class TombstoneSweeper(Periodic):
    """Deletes an external store's values whose runs were deleted.

    Args:
        store: the worker's SQL calls.
        blobs: the external store.
        interval: seconds between passes; 0 disables the sweep in this worker.
    """

    name = "stored value sweep"

    def __init__(self, store: WorkerStore, blobs: BlobStore, interval: float) -> None:
        super().__init__(store, interval)
        self._blobs = blobs

    async def one_pass(self) -> int:
        """Sweep batches while they come back full; return the values deleted."""
        total = 0
        for _ in range(MAX_BATCHES):
            keys = await self._batch()
            if keys:
                await asyncio.to_thread(self._blobs.delete, keys)
                await self._forget(keys)
            total += len(keys)
            if len(keys) < BATCH:
                break
        if total:
            logger.info(
                "deleted %d stored values of store %r whose runs are gone",
                total,
                self._blobs.name,
                extra={"action": "stored_values_deleted", "count": total},
            )
        return total

    async def _batch(self) -> list[BlobKey]:
        params = {"store": self._blobs.name, "max_rows": BATCH}
        async with self._store.pool.connection() as conn:
            rows = await (await conn.execute(query("blob_tombstones"), params)).fetchall()
        return [BlobKey(r[0], r[1]) for r in rows]

    async def _forget(self, keys: list[BlobKey]) -> None:
        params = {
            "store": self._blobs.name,
            "run_ids": [k.run_id for k in keys],
            "blob_ids": [k.blob_id for k in keys],
        }
        async with self._store.pool.connection() as conn:
            await conn.execute(query("blob_forget_tombstones"), params)
