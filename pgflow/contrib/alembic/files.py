"""Revision files written by ``pgflow alembic revision`` / ``retire``: render and write.

The file is plain Alembic (docstring header, ``revision`` / ``down_revision`` /
``depends_on``) with one module-level dict of frozen SQL, ``PGFLOW_FLOWS`` (applied by the
upgrade) or ``PGFLOW_RETIRED`` (removed by the upgrade), that
:mod:`pgflow.contrib.alembic.history` reads back offline. The file's name follows the
project's ``file_template``.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from alembic.util import rev_id as new_rev_id

from pgflow._version import __version__
from pgflow.contrib.alembic.project import AlembicProject, alembic_errors
from pgflow.contrib.alembic.render import IMPORT_LINE, block_literal
from pgflow.errors import CompileError

__all__ = ["RevisionFile", "py_string"]

_TEMPLATE = '''\
"""{message}

Revision ID: {revision}
Revises:{revises}
Create Date: {created}

{about}
"""

from __future__ import annotations

from alembic import op

{import_line}

# revision identifiers, used by Alembic.
revision = {revision_repr}
down_revision = {down_revision_repr}
branch_labels = None
depends_on = {depends_on_repr}

# {comment}
{constant} = {{
{entries}}}


def upgrade() -> None:
{upgrade}


def downgrade() -> None:
{downgrade}
'''


def py_string(value: str) -> str:
    """A double-quoted Python literal for a one-line string."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


@dataclass(frozen=True, slots=True)
class RevisionFile:
    """A new revision file in a project.

    Attributes:
        project: the Alembic project.
        message: the revision message (first docstring line, and the file name's slug).
        revision: the revision id.
        created: the create date (in the project's timezone setting).
    """

    project: AlembicProject
    message: str
    revision: str
    created: datetime

    @classmethod
    def new(cls, project: AlembicProject, message: str, rev_id: str | None) -> RevisionFile:
        """Prepare a revision with ``rev_id`` (default: a random one, as alembic makes)."""
        created = project.script._generate_create_date()
        return cls(project, message, rev_id or new_rev_id(), created)

    @property
    def path(self) -> Path:
        """Where the file goes: the project's version folder and ``file_template``."""
        script, folder = self.project.script, self.project.version_path
        return Path(script._rev_path(folder, self.revision, self.message, self.created))

    def render(
        self, about: str, constant: str, comment: str, flows: dict[str, str], body: tuple[str, str]
    ) -> str:
        """Return the file's text; ``body`` is the upgrade and downgrade function bodies."""
        head = self.project.head
        entries = "".join(f"    {py_string(k)}: {block_literal(v)},\n" for k, v in flows.items())
        text = _TEMPLATE.format(
            message=self.message.replace("\\", "\\\\").replace('"""', '\\"""'),
            revision=self.revision,
            revises=f" {head}" if head else "",
            created=self.created,
            about=about.format(version=__version__),
            import_line=IMPORT_LINE,
            revision_repr=py_string(self.revision),
            down_revision_repr=py_string(head) if head else "None",
            depends_on_repr=py_string(self.project.pgflow_head),
            comment=comment,
            constant=constant,
            entries=entries,
            upgrade=body[0],
            downgrade=body[1],
        )
        _check_frozen(text, constant, flows)
        return text

    def write(self, text: str) -> Path:
        """Create the file (never overwrite one) and check that alembic loads it."""
        path = self.path
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("x", encoding="utf-8", newline="\n") as file:
            file.write(text)
        with alembic_errors(self.project.config):
            type(self.project.script).from_config(self.project.config).get_revision(self.revision)
        return path


def _check_frozen(text: str, constant: str, expected: dict[str, str]) -> None:
    """Parse the rendered file back: the constant must hold exactly the expected SQL."""
    frozen = None
    for node in ast.parse(text).body:
        if isinstance(node, ast.Assign) and ast.unparse(node.targets[0]) == constant:
            frozen = ast.literal_eval(node.value)
    if frozen != expected:
        raise CompileError(f"internal error: the revision's {constant} differs from the SQL")
