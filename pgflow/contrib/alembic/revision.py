"""``pgflow alembic revision``: write a revision that applies flows' compiled SQL.

The SQL is frozen in the file as a string literal, so later changes to the flow code never
change an applied migration. Before writing, the earlier revisions of the project are read
offline (:mod:`pgflow.contrib.alembic.history`): a flow they already define with the same
shape is left out (and said so); one they define with a different shape stops the command,
naming the file, because flows are immutable.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pgflow.compiler import CompiledFlow, compile_flow
from pgflow.contrib.alembic.files import RevisionFile
from pgflow.contrib.alembic.history import EarlierFlow, defined_flows
from pgflow.contrib.alembic.project import load_project
from pgflow.dsl.flow import Flow
from pgflow.errors import CompileError
from pgflow.shape import diff

__all__ = ["RevisionResult", "write_revision"]

_ABOUT = """\
Written by `pgflow alembic revision` (pgflow-py {version}). PGFLOW_FLOWS holds each flow's
compiled SQL, frozen: changing the flow code later never changes this migration. Flows are
immutable; to change one, give it a new slug (e.g. my_flow_v2) in a new revision."""
_COMMENT = "flow slug -> compiled SQL (`pgflow compile` output), applied in this order."
_UPGRADE = '''\
    """Define the flows (a no-op for a flow already defined with the same shape)."""
    for slug, sql in PGFLOW_FLOWS.items():
        op.pgflow_apply_flow(sql, slug)'''
_DOWNGRADE = '''\
    """Remove the flows, with all their runs."""
    for slug in reversed(PGFLOW_FLOWS):
        op.pgflow_remove_flow(slug)'''


@dataclass(frozen=True, slots=True)
class RevisionResult:
    """What :func:`write_revision` did.

    Attributes:
        path: the revision file written, or ``None`` when every flow was already defined.
        revision: its revision id.
        written: the slugs it applies.
        unchanged: slug -> where an earlier revision already defines the same shape.
    """

    path: Path | None
    revision: str | None
    written: tuple[str, ...] = ()
    unchanged: dict[str, str] = field(default_factory=dict)


def write_revision(
    flows: Sequence[Flow],
    config_file: Path,
    *,
    message: str | None = None,
    rev_id: str | None = None,
    head: str | None = None,
    section: str = "alembic",
) -> RevisionResult:
    """Write a revision applying ``flows`` into the project of ``config_file``.

    Args:
        flows: the flows to apply (each slug once).
        config_file: the project's ``alembic.ini``.
        message: the revision message (default: ``create flows a, b``).
        rev_id: the revision id (default: a new random one, as alembic makes).
        head: the user revision to build on (default: the single one).
        section: the ini section to read.

    Raises:
        ConfigurationError: the Alembic project is unusable (see
            :func:`~pgflow.contrib.alembic.project.load_project`).
        CompileError: an earlier revision defines one of the slugs with another shape.
    """
    project = load_project(config_file, section=section, head=head)
    earlier = defined_flows([Path(s.path) for s in project.user_revisions()])
    compiled = [compile_flow(flow) for flow in flows]
    for flow in compiled:
        known = earlier.get(flow.flow_slug)
        if known is not None and known.defined.checksum != flow.checksum:
            raise _changed_shape(flow, known)
    new = {f.flow_slug: f.sql for f in compiled if f.flow_slug not in earlier}
    unchanged = {
        f.flow_slug: earlier[f.flow_slug].where for f in compiled if f.flow_slug in earlier
    }
    if not new:
        return RevisionResult(None, None, (), unchanged)
    file = RevisionFile.new(project, message or "create flows " + ", ".join(new), rev_id)
    path = file.write(file.render(_ABOUT, "PGFLOW_FLOWS", _COMMENT, new, (_UPGRADE, _DOWNGRADE)))
    return RevisionResult(path, file.revision, tuple(new), unchanged)


def _changed_shape(flow: CompiledFlow, earlier: EarlierFlow) -> CompileError:
    names = ("earlier revision", "new definition")
    difference = diff(earlier.defined.shape, flow.shape, names=names)
    return CompileError(
        f"flow {flow.flow_slug!r} is already defined in {earlier.where} with a different "
        f"shape (checksum {earlier.defined.checksum} there, {flow.checksum} now): {difference}",
        hint=f"flows are immutable: give the changed flow a new slug, e.g. "
        f"Flow({flow.flow_slug + '_v2'!r}, ...), write a revision for it, and retire "
        f"{flow.flow_slug!r} once its runs have finished",
        flow_slug=flow.flow_slug,
        path=str(earlier.chunk.path),
        checksum_expected=earlier.defined.checksum,
        checksum_actual=flow.checksum,
    )
