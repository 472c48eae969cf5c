"""References to stored values, and where in a task's values they may stand.

A run input, task output or map element larger than the owner's ``inline_limit_bytes``
setting is stored once, outside the state rows, and stands there as a small reference::

    {"$pgflow_ref": "<blob uuid>", "size": 16777216, "sha256": "<hex>", "store": "pg"}

``size`` and ``sha256`` describe the value's UTF-8 JSON text; ``store`` names where the
bytes are (``pg``: Postgres' own table). The SQL accepts a reference only where it names a
value stored for the same run, and every read names the run, so a reference copied from
another run, or forged, finds nothing.

References stand only at known places (a :class:`Places`): a value itself (a run input, a
task output, a map element), the elements of a map step's output, and, in a dependent
step's input or a run's output, each step's output and the elements of a map step's list.
A user value anywhere else is never taken for a reference.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

from pgflow.errors import ValueStoreError

__all__ = [
    "CHUNK_BYTES",
    "ELEMENTS",
    "PG_STORE",
    "REF_KEY",
    "VALUE",
    "Places",
    "Ref",
    "collect",
    "is_ref",
    "parse_ref",
    "substitute",
]

REF_KEY: Final = "$pgflow_ref"
PG_STORE: Final = "pg"
CHUNK_BYTES: Final = 1 << 20  # the 'pg' store's chunk size (bytea rows of 1 MiB)
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_STORE = re.compile(r"^[a-z][a-z0-9_]{0,31}$")


@dataclass(frozen=True, slots=True)
class Ref:
    """A reference to a stored value.

    Attributes:
        blob_id: the value's id within its run.
        size: the length of its UTF-8 JSON text in bytes.
        sha256: the hex SHA-256 of that text.
        store: the name of the store holding it (``pg``: Postgres).
    """

    blob_id: uuid.UUID
    size: int
    sha256: str
    store: str

    def as_json(self) -> dict[str, Any]:
        """The reference as stored in the state rows."""
        return {REF_KEY: str(self.blob_id), "size": self.size, "sha256": self.sha256,
                "store": self.store}  # fmt: skip


def is_ref(value: Any) -> bool:
    """Whether ``value`` has the shape of a reference (an object with ``$pgflow_ref``)."""
    return isinstance(value, Mapping) and REF_KEY in value


def parse_ref(value: Mapping[str, Any]) -> Ref:
    """Read a reference (the SQL only lets well-formed ones through; this checks again).

    Raises:
        ValueStoreError: it is malformed.
    """
    try:
        blob_id = uuid.UUID(str(value[REF_KEY]))
        size, sha256, store = value["size"], value["sha256"], value.get("store", PG_STORE)
    except (KeyError, ValueError, TypeError):
        raise _malformed(value) from None
    if not (
        isinstance(size, int)
        and not isinstance(size, bool)
        and size >= 0
        and isinstance(sha256, str)
        and _SHA256.match(sha256)
        and isinstance(store, str)
        and _STORE.match(store)
    ):
        raise _malformed(value)
    return Ref(blob_id, size, sha256, store)


def _malformed(value: Any) -> ValueStoreError:
    return ValueStoreError(
        f"{str(value)[:200]} is not a valid reference to a stored value",
        hint='the key "$pgflow_ref" is reserved for pgflow\'s references',
    )


@dataclass(frozen=True, slots=True)
class Places:
    """Where references may stand in a value.

    Attributes:
        kind: ``value`` (the value itself), ``elements`` (each element of a list: a map
            step's output) or ``members`` (each member of an object: ``{step: output}``).
        lists: for ``members``, the keys whose value is a map step's list (each of its
            elements may be a reference).
    """

    kind: Literal["value", "elements", "members"]
    lists: frozenset[str] = frozenset()


VALUE: Final = Places("value")
ELEMENTS: Final = Places("elements")


def collect(value: Any, places: Places) -> list[Ref]:
    """The references standing at ``places`` in ``value``, in order.

    Raises:
        ValueStoreError: a reference there is malformed.
    """
    return [parse_ref(item) for item in _slots(value, places) if is_ref(item)]


def substitute(value: Any, places: Places, values: Mapping[uuid.UUID, Any]) -> Any:
    """``value`` with each reference at ``places`` replaced by ``values[blob_id]``."""

    def swap(item: Any) -> Any:
        return values[uuid.UUID(str(item[REF_KEY]))] if is_ref(item) else item

    if places.kind == "value":
        return swap(value)
    if places.kind == "elements":
        return [swap(e) for e in value] if isinstance(value, list) else value
    if not isinstance(value, dict):
        return value
    return {
        k: ([swap(e) for e in v] if k in places.lists and isinstance(v, list) else swap(v))
        for k, v in value.items()
    }


def _slots(value: Any, places: Places) -> list[Any]:
    if places.kind == "value":
        return [value]
    if places.kind == "elements":
        return list(value) if isinstance(value, list) else []
    if not isinstance(value, dict):
        return []
    found: list[Any] = []
    for key, item in value.items():
        if key in places.lists and isinstance(item, list):
            found.extend(item)
        else:
            found.append(item)
    return found
