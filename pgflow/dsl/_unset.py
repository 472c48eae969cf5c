"""The ``UNSET`` sentinel: "not given", distinct from ``None`` ("no value")."""

from __future__ import annotations

import enum
from typing import Final, TypeVar

T = TypeVar("T")


class Unset(enum.Enum):
    """The type of :data:`UNSET`; its only member is the sentinel itself."""

    UNSET = "UNSET"

    def __repr__(self) -> str:
        return "UNSET"

    def __bool__(self) -> bool:
        return False


UNSET: Final = Unset.UNSET
"""An option that was not given. Compiled SQL omits it; the SQL default applies."""


def or_default(value: T | Unset, default: T) -> T:
    """Return ``value``, or ``default`` when ``value`` is :data:`UNSET`.

    Args:
        value: an option as given by the user.
        default: what applies when it was not given.

    Returns:
        The effective value.
    """
    return default if isinstance(value, Unset) else value
