"""Run ids derived from your own key: idempotent starts that keep history partitioned.

``Client.start(..., run_id=...)`` is idempotent: starting twice with one id returns the
existing run. Deriving that id from your own key makes a start happen at most once; but an
id like ``uuid.uuid5(namespace, key)`` carries no time, so its run is kept in the default
history partition and not dropped with its month (docs/scaling.md, "History partitions").
:func:`keyed_run_id` derives a UUIDv7-shaped id instead: the time is one you know for the
key (when the order was placed), the other bits come from the key. It is the same
derivation as ``pgflow._uuid7_at(at, key)`` in SQL, which schedules use for their ticks.
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import datetime

from pgflow.errors import InvalidInputError

__all__ = ["keyed_run_id"]

_MAX_MS = 1 << 48


def keyed_run_id(key: str, at: datetime) -> uuid.UUID:
    """A run id that is the same for the same ``key`` and ``at``, ordered by ``at``.

    Args:
        key: your idempotency key (e.g. ``f"order:{order.id}"``).
        at: a time that belongs to the key and never changes for it (timezone-aware), e.g.
            when the order was placed. The run is kept in that month's history partition.

    Raises:
        InvalidInputError: ``key`` is not a string, or ``at`` is naive or out of range.
    """
    if not isinstance(key, str):
        raise InvalidInputError(
            f"keyed_run_id: key must be a string, got {type(key).__name__}",
            hint='pass your own identifier as text, e.g. f"order:{order_id}"',
        )
    if not isinstance(at, datetime) or at.tzinfo is None:
        raise InvalidInputError(
            f"keyed_run_id: at must be a timezone-aware datetime, got {at!r}",
            hint="e.g. datetime(2026, 11, 28, 9, 30, tzinfo=UTC): which timezone a naive time "
            "is in cannot be told",
        )
    ms = int(at.timestamp() * 1000) if at.timestamp() >= 0 else -1
    if not 0 <= ms < _MAX_MS:
        raise InvalidInputError(
            f"keyed_run_id: at must be between 1970 and 10889, got {at.isoformat()}",
            hint="pass the time the key belongs to, e.g. when the order was placed",
        )
    raw = bytearray(
        ms.to_bytes(6, "big") + hashlib.md5(key.encode(), usedforsecurity=False).digest()[:10]
    )
    raw[6] = 0x70 | (raw[6] & 0x0F)  # version 7
    raw[8] = 0x80 | (raw[8] & 0x3F)  # RFC 9562 variant
    return uuid.UUID(bytes=bytes(raw))
