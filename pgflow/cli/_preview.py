"""One-line previews of JSON values for tables, with pgflow's value markers spelled out.

Readers get ``{"$truncated": true, "bytes": N}`` in place of a value over the read size cap
and ``{"$undecodable": true, "reason": ..., "bytes": N}`` in place of one Python cannot
decode; a preview shows them as ``<truncated: 16.0 MiB>`` and
``<undecodable: reason, 9.8 KiB>``. A value stored by reference (docs/large-values.md) reads
as ``<stored: 16.0 MiB>``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

__all__ = ["format_size", "marker_label", "preview"]


def format_size(size: int) -> str:
    """``812 B``, ``1.5 KiB``, ``16.0 MiB``."""
    if size < 1024:
        return f"{size} B"
    value = float(size)
    for unit in ("KiB", "MiB", "GiB"):
        value /= 1024
        if value < 1024:
            return f"{value:.1f} {unit}"
    return f"{value / 1024:.1f} TiB"


def marker_label(value: Any) -> str | None:
    """``<truncated: 16.0 MiB>`` or ``<undecodable: reason, 9.8 KiB>`` for a marker,
    ``<stored: 16.0 MiB>`` for a reference to a stored value, else None.

    Readers get ``{"$truncated": true, "bytes": N}`` for a value over the read size cap,
    ``{"$undecodable": true, "reason": ..., "bytes": N}`` for one Python cannot decode and
    ``{"$pgflow_ref": id, "size": N, ...}`` for one stored by reference.
    """
    if isinstance(value, dict) and "$pgflow_ref" in value and isinstance(value.get("size"), int):
        return f"<stored: {format_size(value['size'])}>"
    if not isinstance(value, dict) or not isinstance(value.get("bytes"), int):
        return None
    if value.get("$truncated") is True:
        return f"<truncated: {format_size(value['bytes'])}>"
    if value.get("$undecodable") is True:
        return f"<undecodable: {value.get('reason')}, {format_size(value['bytes'])}>"
    return None


def preview(value: Any, width: int = 80) -> str:
    """One line of a JSON value, cut at ``width``; markers read as ``<truncated: ...>``.

    Only what fits is rendered, so a preview costs O(width) whatever the value's size.
    """
    text = ""
    for token in _tokens(value, width):
        text += token
        if len(text) > width:
            return text[: width - 1] + "…"
    return text


def _tokens(value: Any, width: int) -> Iterator[str]:
    label = marker_label(value)
    if label is not None:
        yield label
    elif isinstance(value, dict):
        yield "{"
        for i, (key, item) in enumerate(value.items()):
            yield (", " if i else "") + json.dumps(str(key)[:width], ensure_ascii=False) + ": "
            yield from _tokens(item, width)
        yield "}"
    elif isinstance(value, list):
        yield "["
        for i, item in enumerate(value):
            yield ", " if i else ""
            yield from _tokens(item, width)
        yield "]"
    elif isinstance(value, str):
        yield json.dumps(value[: width + 1], ensure_ascii=False)
    else:
        yield json.dumps(value, ensure_ascii=False, default=str)
