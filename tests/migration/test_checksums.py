"""The migrations folder: file names, ids, the CHECKSUMS manifest and the build script."""

from __future__ import annotations

import hashlib
import runpy
import subprocess
import sys
from importlib.resources import files
from pathlib import Path

import pytest

from pgflow.errors import SchemaError
from pgflow.migrations import (
    checksum,
    migrations,
    parse_manifest,
    read_manifest,
    render_manifest,
)

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "build-migrations"
RELEASED = ROOT / "pgflow" / "migrations" / "RELEASED"


@pytest.fixture(autouse=True)
def fresh_migrations() -> None:
    """Read the files now: another session in the same tree may have regenerated 0001."""
    migrations.cache_clear()


def test_manifest_matches_the_migration_files() -> None:
    expected = {m.filename: m.checksum for m in migrations()}
    assert read_manifest() == expected, (
        "pgflow/migrations/CHECKSUMS does not match the migration files. Released migrations "
        "are immutable; run scripts/build-migrations to regenerate the unreleased one."
    )


def test_manifest_is_byte_identical_to_its_rendering() -> None:
    text = (files("pgflow.migrations") / "CHECKSUMS").read_text(encoding="utf-8")
    assert text == render_manifest(migrations())


def test_checksums_are_sha256sum_compatible() -> None:
    for migration in migrations():
        raw = (files("pgflow.migrations") / migration.filename).read_bytes()
        assert hashlib.sha256(raw).hexdigest() == migration.checksum


def test_ids_start_at_one_without_gaps() -> None:
    ids = [m.id for m in migrations()]
    assert ids == list(range(1, len(ids) + 1))
    assert migrations()[0].filename == "0001_initial.sql"


def test_checksum_ignores_windows_line_endings() -> None:
    assert checksum("select 1;\r\nselect 2;\r\n") == checksum("select 1;\nselect 2;\n")


def test_malformed_manifest_line_is_refused() -> None:
    with pytest.raises(SchemaError, match="CHECKSUMS line 2: malformed line"):
        parse_manifest(f"{'a' * 64}  0001_initial.sql\nnot a checksum\n")


def test_build_script_agrees_with_the_package_checksum() -> None:
    namespace = runpy.run_path(str(SCRIPT), run_name="build_migrations")
    script_checksum = namespace["checksum"]
    assert callable(script_checksum)
    for sample in ("", "select 1;\n", "é\r\n"):
        assert script_checksum(sample) == checksum(sample)


def test_unreleased_migration_is_built_from_the_current_sql_files() -> None:
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--check"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr


def test_released_migrations_never_change() -> None:
    # sha256sum format: RELEASED pins each released file; an edit fails here (and in CI).
    released = parse_manifest(RELEASED.read_text(encoding="utf-8"))
    assert "0001_initial.sql" in released
    packaged = {m.filename: m.checksum for m in migrations()}
    for name, expected in released.items():
        assert packaged.get(name) == expected, (
            f"pgflow/migrations/{name} is released and must never change; restore it and put "
            "the change in a new migration (pgflow/sql/upgrades/)."
        )


def test_the_build_script_refuses_when_a_released_migration_was_edited(tmp_path: Path) -> None:
    namespace = runpy.run_path(str(SCRIPT), run_name="build_migrations")
    fake = tmp_path / "migrations"
    fake.mkdir()
    (fake / "0001_initial.sql").write_text("select 1;\n", encoding="utf-8")
    (fake / "RELEASED").write_text(f"{'0' * 64}  0001_initial.sql\n", encoding="utf-8")
    tampered = namespace["tampered"]
    tampered.__globals__["MIGRATIONS_DIR"] = fake
    tampered.__globals__["RELEASED"] = fake / "RELEASED"
    assert tampered() == ["0001_initial.sql is released but was edited (checksum changed)"]
