"""Autogenerate: compare the project's flows with the database and propose new ones.

Enabled per project in ``env.py``::

    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        autogenerate_plugins=["alembic.autogenerate.*", "pgflow.*"],
        pgflow_flows="app.flows",  # or a list of FLOWS references / Flow objects
        process_revision_directives=pgflow_revision_directives,
    )

``pgflow_flows`` may instead be set in ``alembic.ini`` (``pgflow_flows = app.flows``).
A flow the database lacks becomes ``op.pgflow_apply_flow(...)`` (its downgrade removes
it); a deployed flow with the same checksum needs nothing; a deployed flow whose shape
changed stops ``alembic revision --autogenerate`` with the difference and a new-slug hint.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from alembic.autogenerate.api import AutogenContext
from alembic.operations.ops import MigrationScript, UpgradeOps
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.script.revision import RevisionError
from alembic.util import CommandError, PriorityDispatchResult

from pgflow.contrib.alembic import BRANCH, FLOWS_OPTION
from pgflow.contrib.alembic.ops import ApplyFlowOp, escape_colons, render_query
from pgflow.errors import ConfigurationError, ShapeMismatchError
from pgflow.sql import query

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from pgflow.dsl.flow import Flow

__all__ = [
    "FlowChangedError",
    "compare_flows",
    "configured_flows",
    "pgflow_revision_directives",
]

logger = logging.getLogger(__name__)


class FlowChangedError(ShapeMismatchError, CommandError):
    """A deployed flow's shape differs from the code (alembic prints it as ``FAILED:``)."""


class FlowsNotConfiguredError(ConfigurationError, CommandError):
    """The pgflow autogenerate plugin is enabled, but no flows are configured."""


def configured_flows(autogen_context: AutogenContext) -> list[Flow]:
    """Return the flows named by ``pgflow_flows`` (``configure()`` keyword or ini option).

    Raises:
        FlowsNotConfiguredError: neither is set.
        FlowLoadError: a reference cannot be loaded.
    """
    from pgflow.dsl.flow import Flow
    from pgflow.loader import load_flows

    value: Any = autogen_context.opts.get(FLOWS_OPTION)
    config = autogen_context.migration_context.config
    if value is None and config is not None:
        value = config.get_main_option(FLOWS_OPTION)
        value = value.split() if value else None
    if not value:
        raise FlowsNotConfiguredError(
            "the pgflow autogenerate plugin is enabled, but no flows are configured",
            hint=f'pass {FLOWS_OPTION}="app.flows" to context.configure() in env.py, '
            f"or set {FLOWS_OPTION} = app.flows in alembic.ini",
        )
    items: Iterable[Any] = [value] if isinstance(value, str | Flow) else value
    flows: list[Flow] = []
    for item in items:
        flows += [item] if isinstance(item, Flow) else load_flows(str(item))
    return list({flow.slug: flow for flow in flows}.values())


def compare_flows(autogen_context: AutogenContext, upgrade_ops: UpgradeOps) -> Any:
    """The ``autogenerate`` comparator: propose ``op.pgflow_apply_flow`` for new flows.

    Raises:
        FlowChangedError: a deployed flow's shape differs from its definition in the code.
    """
    from pgflow.compiler import compile_flow

    connection = autogen_context.connection
    if connection is None:  # pragma: no cover - autogenerate always has a connection
        return PriorityDispatchResult.CONTINUE
    installed = bool(_scalar(connection, render_query("flows_table_exists")))
    for flow in configured_flows(autogen_context):
        compiled = compile_flow(flow)
        deployed = _deployed(connection, flow.slug) if installed else None
        if deployed is None:
            logger.info("pgflow: new flow %s", flow.slug)
            upgrade_ops.ops.append(ApplyFlowOp(compiled.sql, flow.slug))
        elif deployed[0] != compiled.checksum:
            raise _changed(flow.slug, deployed, compiled.shape, compiled.checksum)
    return PriorityDispatchResult.CONTINUE


def _scalar(connection: Connection, text: str) -> Any:
    from sqlalchemy import text as sql_text

    return connection.execute(sql_text(escape_colons(text))).scalar()


def _deployed(connection: Connection, slug: str) -> tuple[str, Any] | None:
    row = connection.exec_driver_sql(query("deployed_flow"), {"slug": slug}).mappings().first()
    return None if row is None else (str(row["checksum"]), row["shape"])


def _changed(slug: str, deployed: tuple[str, Any], shape: Any, checksum: str) -> FlowChangedError:
    from pgflow.shape import FlowShape, diff

    difference = diff(FlowShape.from_json(deployed[1]), shape, names=("database", "code"))
    return FlowChangedError(
        f"flow {slug!r} is deployed with a different shape (checksum {deployed[0]} in the "
        f"database, {checksum} in the code): {difference}",
        hint=f"flows are immutable: give the changed flow a new slug, e.g. "
        f"Flow({slug + '_v2'!r}, ...), and retire {slug!r} once its runs have finished",
        flow_slug=slug,
        checksum_expected=deployed[0],
        checksum_actual=checksum,
    )


def pgflow_revision_directives(
    context: MigrationContext, revision: Any, directives: Sequence[MigrationScript]
) -> None:
    """``process_revision_directives`` hook for projects that include the pgflow branch.

    - A new revision goes on *your* branch: with the default ``--head`` it builds on your
      single head (or starts your first one, in your versions folder), never on the
      pgflow branch, whose files live inside the installed package.
    - A revision that applies flows needs the pgflow functions, so it ``depends_on`` the
      head of the ``pgflow`` branch, and ``alembic upgrade heads`` runs it after them.

    Call it from your own hook if you already have one.
    """
    script = context.script
    if script is None:
        return
    try:
        heads = [h.revision for h in script.get_revisions(f"{BRANCH}@head") if h is not None]
    except RevisionError:  # no pgflow branch in version_locations: nothing to do
        return
    for directive in directives:
        _place_on_user_branch(script, directive)
        if heads and _applies_flows(directive):
            existing = directive.depends_on
            known = [existing] if isinstance(existing, str) else list(existing or ())
            directive.depends_on = tuple(dict.fromkeys([*known, *heads]))


def _place_on_user_branch(script: ScriptDirectory, directive: MigrationScript) -> None:
    from pgflow.contrib.alembic.project import user_folders, user_heads

    if directive.head not in (None, "head"):
        return  # the user chose with --head (the alembic CLI leaves it None otherwise)
    mine, folders = user_heads(script), user_folders(script)
    if len(mine) == 1:
        directive.head = mine[0]
    elif not mine and len(folders) == 1:
        directive.head = "base"
        if directive.version_path is None:
            directive.version_path = str(folders[0])


def _applies_flows(directive: MigrationScript) -> bool:
    return any(isinstance(op, ApplyFlowOp) for ops in directive.upgrade_ops_list for op in ops.ops)
