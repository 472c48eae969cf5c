"""Database URL resolution order and the one-line description commands print."""

from __future__ import annotations

from pathlib import Path

import pytest

from pgflow.db.project import find_pyproject, project_dir
from pgflow.db.target import DatabaseTarget, configured_database_url
from pgflow.errors import ConfigurationError

ARG = "postgresql://arg@h1/a"
PGFLOW_ENV = "postgresql://pgflowenv@h2/b"
DATABASE_ENV = "postgresql://dbenv@h3/c"
TOML = "postgresql://toml@h4/d"


def write_pyproject(folder: Path, url: str | None = TOML, extra: str = "") -> Path:
    body = '[project]\nname = "demo"\n' + extra
    if url is not None:
        body += f'\n[tool.pgflow]\ndatabase_url = "{url}"\n'
    path = folder / "pyproject.toml"
    path.write_text(body)
    return path


@pytest.fixture
def project(tmp_path: Path) -> Path:
    write_pyproject(tmp_path)
    return tmp_path


def test_explicit_argument_wins_over_everything(project: Path) -> None:
    env = {"PGFLOW_DATABASE_URL": PGFLOW_ENV, "DATABASE_URL": DATABASE_ENV}
    target = configured_database_url(ARG, environ=env, cwd=project)
    assert target == DatabaseTarget(ARG, "argument")


def test_pgflow_database_url_wins_over_database_url_and_pyproject(project: Path) -> None:
    env = {"PGFLOW_DATABASE_URL": PGFLOW_ENV, "DATABASE_URL": DATABASE_ENV}
    target = configured_database_url(None, environ=env, cwd=project)
    assert target == DatabaseTarget(PGFLOW_ENV, "PGFLOW_DATABASE_URL")


def test_database_url_wins_over_pyproject(project: Path) -> None:
    target = configured_database_url(None, environ={"DATABASE_URL": DATABASE_ENV}, cwd=project)
    assert target == DatabaseTarget(DATABASE_ENV, "DATABASE_URL")


def test_pyproject_is_used_when_nothing_else_is_set(project: Path) -> None:
    target = configured_database_url(None, environ={}, cwd=project)
    assert target == DatabaseTarget(TOML, "pyproject", project / "pyproject.toml")


def test_empty_values_count_as_unset(project: Path) -> None:
    env = {"PGFLOW_DATABASE_URL": "", "DATABASE_URL": ""}
    target = configured_database_url("", environ=env, cwd=project)
    assert target is not None and target.source == "pyproject"


def test_nothing_configured_means_embedded(tmp_path: Path) -> None:
    write_pyproject(tmp_path, url=None)
    assert configured_database_url(None, environ={}, cwd=tmp_path) is None


def test_pyproject_is_found_in_a_parent_folder(project: Path) -> None:
    nested = project / "src" / "app"
    nested.mkdir(parents=True)
    assert find_pyproject(nested) == project / "pyproject.toml"
    target = configured_database_url(None, environ={}, cwd=nested)
    assert target is not None and target.url == TOML


def test_nearest_pyproject_wins_even_without_a_pgflow_table(project: Path) -> None:
    inner = project / "inner"
    inner.mkdir()
    write_pyproject(inner, url=None)
    assert configured_database_url(None, environ={}, cwd=inner) is None
    assert project_dir(inner) == inner.resolve()


def test_project_dir_falls_back_to_the_start_folder(tmp_path: Path) -> None:
    lonely = tmp_path / "no_project"
    lonely.mkdir()
    if find_pyproject(lonely) is None:  # a pyproject above /tmp would change the answer
        assert project_dir(lonely) == lonely.resolve()


def test_invalid_toml_names_the_file(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("[tool.pgflow\n")
    with pytest.raises(ConfigurationError) as exc:
        configured_database_url(None, environ={}, cwd=tmp_path)
    assert str(tmp_path / "pyproject.toml") in exc.value.message
    assert exc.value.hint and "--database-url" in exc.value.hint


@pytest.mark.parametrize("value", ["42", '""', "[1]"])
def test_database_url_must_be_a_non_empty_string(tmp_path: Path, value: str) -> None:
    (tmp_path / "pyproject.toml").write_text(f"[tool.pgflow]\ndatabase_url = {value}\n")
    with pytest.raises(ConfigurationError) as exc:
        configured_database_url(None, environ={}, cwd=tmp_path)
    assert "[tool.pgflow] database_url must be a non-empty string" in exc.value.message
    assert exc.value.hint and "postgresql://" in exc.value.hint


def test_describe_embedded_is_one_line_with_the_relative_folder(tmp_path: Path) -> None:
    target = DatabaseTarget("postgresql://x", "embedded", tmp_path / ".pgflow")
    line = target.describe(cwd=tmp_path)
    assert line.startswith("Using embedded Postgres in ./.pgflow ")
    assert "--database-url" in line and "\n" not in line
    assert target.is_embedded


def test_describe_never_shows_the_password() -> None:
    target = DatabaseTarget("postgresql://app:s3cret@db.example.com:6543/prod", "DATABASE_URL")
    line = target.describe()
    assert "s3cret" not in line
    assert "app@db.example.com:6543/prod" in line and "DATABASE_URL" in line


def test_describe_pyproject_names_the_file(project: Path) -> None:
    target = configured_database_url(None, environ={}, cwd=project)
    assert target is not None
    assert "(from ./pyproject.toml)" in target.describe(cwd=project)
