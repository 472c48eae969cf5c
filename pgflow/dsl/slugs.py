"""Slug rules, mirroring what ``pgflow.create_flow`` and ``pgflow.add_step`` accept.

A slug (flow or step) is 1 to 128 characters matching ``^[a-zA-Z_][a-zA-Z0-9_]*$``, does
not start or end with ``_`` (pgflow 0.17) and is not one of the reserved words
:data:`RESERVED_SLUGS`. The SQL side refuses exactly the same slugs for new flows and steps
(``pgflow._check_slug``), so a flow that passes here never fails there for its slugs.
Step slugs must also differ in more than letter case within a flow (checked where steps
are added). Flows deployed under the older rule, which allowed a leading or trailing
``_``, keep working in the database (``pgflow.is_valid_slug`` still accepts them).
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
        return "must start with a letter and contain only letters, digits and '_'"
    if slug.startswith("_") or slug.endswith("_"):
        return "must not start or end with '_'"
    if slug in RESERVED_SLUGS:
        return f"is a reserved word (reserved: {', '.join(sorted(RESERVED_SLUGS))})"
    return None


def is_valid_slug(slug: object) -> bool:
    """Return whether ``slug`` is a valid new flow or step slug (same rule as SQL)."""
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
        hint="use a name like 'fetch_page': a letter, then letters, digits and '_' (not last), "
        "at most 128 characters",
        flow_slug=flow_slug if kind == "step" else str(slug),
        step_slug=str(slug) if kind == "step" else None,
    )
