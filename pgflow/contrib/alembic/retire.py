"""``pgflow alembic retire``: write a revision that removes flows and all their runs.

Its downgrade re-applies the SQL that defined each flow, copied from the earlier revision
that froze it (read offline by :mod:`pgflow.contrib.alembic.history`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from pgflow.contrib.alembic.files import RevisionFile
from pgflow.contrib.alembic.history import defined_flows
from pgflow.contrib.alembic.project import load_project
from pgflow.errors import CompileError

__all__ = ["RetireResult", "write_retirement"]

_ABOUT = """\
Written by `pgflow alembic retire` (pgflow-py {version}). The upgrade removes the flows in
PGFLOW_RETIRED with all their runs; the downgrade defines them again from the SQL that
defined them (their runs stay gone)."""
_COMMENT = "flow slug -> the compiled SQL that defined it, re-applied by downgrade()."
_UPGRADE = '''\
    """Remove the flows and all their runs."""
    for slug in PGFLOW_RETIRED:
        op.pgflow_remove_flow(slug)'''
_DOWNGRADE = '''\
    """Define the flows again."""
    for slug, sql in PGFLOW_RETIRED.items():
        op.pgflow_apply_flow(sql, slug)'''


@dataclass(frozen=True, slots=True)
class RetireResult:
    """The revision file :func:`write_retirement` wrote, and its id."""

    path: Path
    revision: str


def write_retirement(
    slugs: Sequence[str],
    config_file: Path,
    *,
    message: str | None = None,
    rev_id: str | None = None,
    head: str | None = None,
    section: str = "alembic",
) -> RetireResult:
    """Write a revision removing the flows ``slugs`` into the project of ``config_file``.

    Raises:
        ConfigurationError: the Alembic project is unusable.
        CompileError: no earlier revision defines one of the slugs (or it is retired).
    """
    project = load_project(config_file, section=section, head=head)
    earlier = defined_flows([Path(s.path) for s in project.user_revisions()])
    missing = [slug for slug in slugs if slug not in earlier]
    if missing:
        raise CompileError(
            f"no earlier revision defines {', '.join(map(repr, missing))} (or it is retired)",
            hint=f"defined in {project.version_path}: {', '.join(sorted(earlier)) or 'none'}",
        )
    sql = {slug: earlier[slug].chunk.sql for slug in dict.fromkeys(slugs)}
    file = RevisionFile.new(project, message or "retire flows " + ", ".join(sql), rev_id)
    text = file.render(_ABOUT, "PGFLOW_RETIRED", _COMMENT, sql, (_UPGRADE, _DOWNGRADE))
    return RetireResult(file.write(text), file.revision)
