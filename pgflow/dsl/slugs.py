"""Slug rules, mirroring the SQL function ``pgflow.is_valid_slug``.

A slug (flow or step) is 1 to 128 characters matching ``^[a-zA-Z_][a-zA-Z0-9_]*$`` and is
not one of the reserved words :data:`RESERVED_SLUGS`. The SQL side refuses exactly the same
slugs, so a flow that passes here never fails there for its slugs.
"""

from __future__ import annotations

import re
from typing import Final, Literal

from pgflow.errors import InvalidSlugError

SLUG_PATTERN: Final = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
MAX_SLUG_LENGTH: Final = 128
RESERVED_SLUGS: Final = frozenset({"run", "input"})
"""Words a slug cannot be: ``input`` names the flow input in a step's input object and
``run`` names the run in pgflow's run output."""


def slug_problem(slug: object) -> str | None:
    """Say what is wrong with ``slug``, or return ``None`` when it is valid.

    Args:
        slug: the candidate slug (any object; only a ``str`` can be valid).

    Returns:
        A short description of the problem, or ``None``.
    """
    if not isinstance(slug, str):
        return f"must be a str, not {type(slug).__name__}"
    if not slug:
        return "must not be empty"
    if len(slug) > MAX_SLUG_LENGTH:
        return f"is {len(slug)} characters long; the limit is {MAX_SLUG_LENGTH}"
    if not SLUG_PATTERN.fullmatch(slug):
        return "must start with a letter or '_' and contain only letters, digits and '_'"
    if slug in RESERVED_SLUGS:
        return f"is a reserved word (reserved: {', '.join(sorted(RESERVED_SLUGS))})"
    return None


def is_valid_slug(slug: object) -> bool:
    """Return whether ``slug`` is a valid flow or step slug (same rule as SQL)."""
    return slug_problem(slug) is None


def check_slug(slug: object, *, kind: Literal["flow", "step"], flow_slug: str | None = None) -> str:
    """Return ``slug`` if it is valid, else raise :class:`InvalidSlugError`.

    Args:
        slug: the candidate slug.
        kind: whether it names a flow or a step (used in the message).
        flow_slug: the flow a step slug belongs to.

    Returns:
        The slug, now known to be a valid ``str``.

    Raises:
        InvalidSlugError: naming the slug, the rule it breaks and how to fix it.
    """
    problem = slug_problem(slug)
    if problem is None:
        assert isinstance(slug, str)
        return slug
    where = f" in flow {flow_slug!r}" if flow_slug is not None else ""
    raise InvalidSlugError(
        f"invalid {kind} slug {slug!r}{where}: it {problem}",
        hint="use a name like 'fetch_page': letters, digits and '_', at most 128 characters",
        flow_slug=flow_slug if kind == "step" else slug,
        step_slug=slug if kind == "step" else None,
    )
