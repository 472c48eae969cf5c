"""The packaged schema revisions: one per migration file, chained on the `pgflow` branch."""

from __future__ import annotations

import ast
from importlib.resources import files
from pathlib import Path

from alembic.script import ScriptDirectory

from pgflow.contrib.alembic import VERSIONS, revision_id
from pgflow.migrations import migrations

FOLDER = Path(str(files("pgflow.contrib.alembic") / "versions"))


def scripts() -> ScriptDirectory:
    return ScriptDirectory(str(FOLDER), version_locations=[VERSIONS])


def test_every_migration_has_a_revision_on_the_pgflow_branch() -> None:
    script = scripts()
    previous = None
    for migration in migrations():
        revision = script.get_revision(revision_id(migration.id))
        assert revision is not None, f"no Alembic revision for {migration.filename}"
        assert revision.down_revision == previous
        assert "pgflow" in revision.branch_labels
        previous = revision.revision
    assert [h for h in script.get_heads()] == [previous]


def test_each_revision_applies_its_own_migration() -> None:
    for migration in migrations():
        path = scripts().get_revision(revision_id(migration.id)).path
        calls = [
            node
            for node in ast.walk(ast.parse(Path(path).read_text(encoding="utf-8")))
            if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "pgflow_install"
        ]
        assert [ast.literal_eval(c.args[0]) for c in calls] == [migration.id]


def installed_migrations(path: Path) -> list[int]:
    """The migration ids a revision file passes to ``op.pgflow_install(...)``."""
    return [
        ast.literal_eval(node.args[0])
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "pgflow_install"
    ]


def test_every_packaged_migration_has_exactly_one_revision_file() -> None:
    # A new pgflow/migrations/NNNN_name.sql needs versions/vNNNN_name.py, and nothing else
    # may apply it: scripts/build-migrations cannot write the revision for you.
    found: dict[int, list[str]] = {}
    for path in sorted(FOLDER.glob("v*.py")):
        for migration_id in installed_migrations(path):
            found.setdefault(migration_id, []).append(path.name)
    expected = {m.id: [f"v{m.id:04d}_{m.name}.py"] for m in migrations()}
    assert found == expected, (
        "Each pgflow migration needs exactly one Alembic revision in "
        "pgflow/contrib/alembic/versions/ (copy the newest one and change its numbers)."
    )


def test_only_the_base_revision_declares_the_branch_label() -> None:
    labelled = [
        path.name
        for path in FOLDER.glob("*.py")
        if 'branch_labels = ("pgflow",)' in path.read_text(encoding="utf-8")
    ]
    assert labelled == ["v0001_initial.py"]


def test_the_package_exports_its_public_names_lazily() -> None:
    import pgflow.contrib.alembic as integration

    for name in integration.__all__:
        assert getattr(integration, name) is not None
