"""Small helpers for the words pgflow prints."""

from __future__ import annotations

__all__ = ["counted"]


def counted(count: int, singular: str, plural: str | None = None) -> str:
    """``count`` and the noun in the right number: ``1 step``, ``2 steps``, ``0 steps``."""
    return f"{count} {singular if count == 1 else plural or singular + 's'}"
