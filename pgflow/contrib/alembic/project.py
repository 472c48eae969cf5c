"""A user's Alembic project as pgflow sees it: config, scripts, the pgflow branch head,
the user's head and the folder new revisions go to.

Alembic's own errors (``CommandError``, revision errors) become
:class:`~pgflow.errors.ConfigurationError` with a hint, so the CLI prints one line instead
of a traceback.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

from alembic.config import Config
from alembic.script import Script, ScriptDirectory
from alembic.script.revision import RevisionError
from alembic.util import CommandError

from pgflow.contrib.alembic import BRANCH, VERSIONS
from pgflow.errors import ConfigurationError

__all__ = ["AlembicProject", "alembic_errors", "load_project", "user_folders", "user_heads"]


@dataclass(frozen=True, slots=True)
class AlembicProject:
    """The parts of an Alembic project a new flow revision needs.

    Attributes:
        config: the loaded ``alembic.ini``.
        script: its script directory (every revision of every version location).
        pgflow_head: the head revision of the ``pgflow`` branch (``pgflow_0001``).
        head: the user's head revision the new one builds on (``None``: a new base).
        version_path: the folder the new revision file goes to.
    """

    config: Config
    script: ScriptDirectory
    pgflow_head: str
    head: str | None
    version_path: Path

    def user_revisions(self) -> list[Script]:
        """The revisions outside the pgflow branch, oldest first."""
        with alembic_errors(self.config):
            scripts = list(self.script.walk_revisions())
        return [s for s in reversed(scripts) if BRANCH not in s.branch_labels]


@contextmanager
def alembic_errors(config: Config | None) -> Iterator[None]:
    """Turn alembic's errors into :class:`ConfigurationError` naming the ini file."""
    where = config.config_file_name if config is not None else "alembic.ini"
    try:
        yield
    except (CommandError, RevisionError) as exc:
        raise ConfigurationError(
            f"Alembic project {where}: {exc}",
            hint="check script_location and version_locations in that file (see docs/alembic.md)",
        ) from exc


def load_project(
    config_file: Path, *, section: str = "alembic", head: str | None = None
) -> AlembicProject:
    """Load the Alembic project of ``config_file`` and find where a new revision goes.

    Args:
        config_file: the project's ``alembic.ini``.
        section: the ini section (``alembic -n NAME``).
        head: the user revision to build on; default: the single head outside the pgflow
            branch, or none in a new project.

    Raises:
        ConfigurationError: no such file, an invalid project, no pgflow branch in
            ``version_locations``, several user heads and no ``head``, or no folder.
    """
    if not config_file.is_file():
        raise ConfigurationError(
            f"no Alembic configuration at {config_file}",
            hint="run `alembic init migrations` in your project, or pass -c path/to/alembic.ini",
        )
    config = Config(str(config_file), ini_section=section)
    with alembic_errors(config):
        script = ScriptDirectory.from_config(config)
        pgflow_head = _pgflow_head(config, script)
        user_head = head if head is not None else _user_head(config, script)
        resolved = script.get_revision(user_head) if user_head else None
    version_path = _version_path(config, script, resolved)
    return AlembicProject(
        config, script, pgflow_head, resolved.revision if resolved else None, version_path
    )


def _pgflow_head(config: Config, script: ScriptDirectory) -> str:
    try:
        heads = script.get_revisions(f"{BRANCH}@head")
    except (CommandError, RevisionError):
        heads = ()
    if not heads or heads[0] is None:
        raise ConfigurationError(
            f"{config.config_file_name}: the pgflow schema revisions are not in version_locations",
            hint=f"add {VERSIONS} to version_locations, with path_separator = newline "
            "(see docs/alembic.md)",
        )
    return heads[0].revision


def user_heads(script: ScriptDirectory) -> list[str]:
    """The heads outside the pgflow branch, sorted."""
    heads = [h for h in script.get_revisions("heads") if h is not None]
    return sorted(h.revision for h in heads if BRANCH not in h.branch_labels)


def user_folders(script: ScriptDirectory) -> list[Path]:
    """The version locations besides pgflow's own."""
    ours = Path(str(files("pgflow.contrib.alembic") / "versions")).resolve()
    # alembic resolves "package:folder" entries; this is the list it loads revisions from.
    return [p for p in script._version_locations if p.resolve() != ours]


def _user_head(config: Config, script: ScriptDirectory) -> str | None:
    mine = user_heads(script)
    if len(mine) > 1:
        raise ConfigurationError(
            f"{config.config_file_name}: several heads ({', '.join(mine)})",
            hint="pass --head REVISION, or merge them first with `alembic merge heads`",
        )
    return mine[0] if mine else None


def _version_path(config: Config, script: ScriptDirectory, head: Script | None) -> Path:
    if head is not None:
        return Path(head.path).parent
    folders = user_folders(script)
    if len(folders) != 1:
        raise ConfigurationError(
            f"{config.config_file_name}: cannot tell which version location is yours "
            f"({', '.join(map(str, folders)) or 'none besides pgflow'})",
            hint="list exactly one folder of your own in version_locations, "
            "e.g. %(here)s/migrations/versions",
        )
    return folders[0]
