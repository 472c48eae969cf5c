"""Alembic integration: the pgflow schema as an Alembic branch, and flows as revisions.

In ``alembic.ini`` (one location per line, hence ``path_separator = newline``)::

    path_separator = newline
    version_locations =
        %(here)s/migrations/versions
        pgflow.contrib.alembic:versions

``alembic upgrade heads`` then installs the pgflow schema (branch ``pgflow``), and
``pgflow alembic revision app/flows.py`` writes a revision that applies the flows' compiled
SQL, frozen in the file. Revisions use these operations, registered by importing
:mod:`pgflow.contrib.alembic.ops`:

- ``op.pgflow_install(migration=None)`` applies packaged schema migrations, recording them
  in ``pgflow.schema_migrations`` exactly as ``pgflow install`` does;
- ``op.pgflow_uninstall()`` drops schema ``pgflow``;
- ``op.pgflow_apply_flow(sql, slug)`` applies a flow's compiled SQL;
- ``op.pgflow_remove_flow(slug)`` removes a flow and its runs.

Alembic imports this package (through the plugin entry point) while it is still importing
itself, so this module imports nothing from alembic: the names below load on first use.
See ``docs/alembic.md`` for the walk-through.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pgflow.contrib.alembic.compare import FlowChangedError as FlowChangedError
    from pgflow.contrib.alembic.compare import (
        pgflow_revision_directives as pgflow_revision_directives,
    )
    from pgflow.contrib.alembic.ops import ApplyFlowOp as ApplyFlowOp
    from pgflow.contrib.alembic.ops import InstallOp as InstallOp
    from pgflow.contrib.alembic.ops import RemoveFlowOp as RemoveFlowOp
    from pgflow.contrib.alembic.ops import UninstallOp as UninstallOp
    from pgflow.contrib.alembic.ops import escape_colons as escape_colons
    from pgflow.contrib.alembic.ops import revision_id as revision_id
    from pgflow.contrib.alembic.retire import write_retirement as write_retirement
    from pgflow.contrib.alembic.revision import write_revision as write_revision

__all__ = [
    "BRANCH",
    "FLOWS_OPTION",
    "VERSIONS",
    "ApplyFlowOp",
    "FlowChangedError",
    "InstallOp",
    "RemoveFlowOp",
    "UninstallOp",
    "escape_colons",
    "pgflow_revision_directives",
    "revision_id",
    "write_retirement",
    "write_revision",
]

BRANCH = "pgflow"
"""The branch label of the pgflow schema revisions."""
VERSIONS = "pgflow.contrib.alembic:versions"
"""The ``version_locations`` entry for the pgflow schema revisions."""
FLOWS_OPTION = "pgflow_flows"
"""The ``context.configure()`` keyword (or ``alembic.ini`` option) naming the flows."""

_LAZY = {
    "FlowChangedError": "compare",
    "pgflow_revision_directives": "compare",
    "ApplyFlowOp": "ops",
    "InstallOp": "ops",
    "RemoveFlowOp": "ops",
    "UninstallOp": "ops",
    "escape_colons": "ops",
    "revision_id": "ops",
    "write_retirement": "retire",
    "write_revision": "revision",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
