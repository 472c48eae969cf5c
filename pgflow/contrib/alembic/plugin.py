"""The ``alembic.plugins`` entry point ``pgflow.flows``.

Alembic loads this module while it is still importing itself, then calls :func:`setup`.
So neither may import alembic: :func:`setup` registers a comparator that imports the real
one (and the operations and renderers it needs) when autogenerate runs. The comparator
only runs in projects whose ``env.py`` enables it::

    context.configure(..., autogenerate_plugins=["alembic.autogenerate.*", "pgflow.*"])
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from alembic.autogenerate.api import AutogenContext
    from alembic.operations.ops import UpgradeOps
    from alembic.runtime.plugins import Plugin

__all__ = ["compare_flows", "setup"]


def setup(plugin: Plugin) -> None:
    """Register the pgflow autogenerate comparator (cheap: nothing is imported)."""
    plugin.add_autogenerate_comparator(compare_flows, "autogenerate")


def compare_flows(autogen_context: AutogenContext, upgrade_ops: UpgradeOps) -> Any:
    """Run :func:`pgflow.contrib.alembic.compare.compare_flows`, loading it on first use.

    A pgflow error (say, the flows module fails to import) becomes alembic's
    ``CommandError``, which the alembic command prints as one ``FAILED:`` line.
    """
    from alembic.util import CommandError

    from pgflow.contrib.alembic import render  # noqa: F401 - registers ops and renderers
    from pgflow.contrib.alembic.compare import compare_flows as compare
    from pgflow.errors import PgflowError

    try:
        return compare(autogen_context, upgrade_ops)
    except PgflowError as exc:
        if isinstance(exc, CommandError):
            raise
        raise CommandError(f"pgflow: {exc}") from exc
