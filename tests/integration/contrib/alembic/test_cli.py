"""`pgflow alembic revision|retire` on the command line, and the real `alembic` command."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from pgflow.cli import main

from .conftest import AlembicProject, pgflow_head
from .flows import GREET, GREET_CHANGED, REPORT

ALEMBIC = str(Path(sys.executable).with_name("alembic"))


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


def test_revision_writes_a_file_and_reports_flows_already_defined(
    project: AlembicProject,
) -> None:
    flows = project.flows_file("greet_flows", GREET)
    ini = str(project.ini)

    code, output = run("alembic", "revision", str(flows), "-c", ini, "--rev-id", "f1", "-m", "x")
    again_code, again = run("alembic", "revision", str(flows), "-c", ini, "--rev-id", "f2")

    assert code == 0
    assert f"wrote {project.versions / 'f1_x.py'} (revision f1: greet)" in output
    assert again_code == 0
    assert "flow 'greet' is already defined with the same shape in" in again
    assert "nothing to write" in again


def test_a_changed_shape_exits_1_with_a_hint_and_no_traceback(project: AlembicProject) -> None:
    ini = str(project.ini)
    run("alembic", "revision", str(project.flows_file("a", GREET)), "-c", ini, "--rev-id", "f1")

    code, output = run(
        "alembic", "revision", str(project.flows_file("b", GREET_CHANGED)), "-c", ini
    )

    assert code == 1
    assert "Error: flow 'greet' is already defined in" in output
    assert "Hint: flows are immutable" in output
    assert "Traceback" not in output


def test_a_missing_alembic_ini_is_one_line_with_a_hint(tmp_path: Path) -> None:
    flows = tmp_path / "flows.py"
    flows.write_text(REPORT, encoding="utf-8")

    code, output = run("alembic", "revision", str(flows), "-c", str(tmp_path / "alembic.ini"))

    assert code == 1
    assert f"Error: no Alembic configuration at {tmp_path / 'alembic.ini'}" in output
    assert "Hint: run `alembic init migrations`" in output


def test_a_project_without_the_pgflow_branch_gets_the_version_locations_hint(
    project: AlembicProject,
) -> None:
    text = project.ini.read_text(encoding="utf-8")
    project.ini.write_text(text.replace("    pgflow.contrib.alembic:versions\n", ""), "utf-8")

    code, output = run(
        "alembic", "revision", str(project.flows_file("a", REPORT)), "-c", str(project.ini)
    )

    assert code == 1
    assert "the pgflow schema revisions are not in version_locations" in output
    assert "add pgflow.contrib.alembic:versions to version_locations" in output


def test_retire_writes_a_revision_removing_the_flow(project: AlembicProject) -> None:
    ini = str(project.ini)
    run("alembic", "revision", str(project.flows_file("a", GREET)), "-c", ini, "--rev-id", "f1")

    code, output = run("alembic", "retire", "greet", "-c", ini, "--rev-id", "r1")

    assert code == 0
    assert "(revision r1: retires greet)" in output
    assert 'down_revision = "f1"' in (project.versions / "r1_retire_flows_greet.py").read_text()


def test_the_alembic_command_upgrades_and_shows_the_pgflow_branch(project: AlembicProject) -> None:
    ini = str(project.ini)
    run("alembic", "revision", str(project.flows_file("a", GREET)), "-c", ini, "--rev-id", "f1")
    env = {**os.environ, "PYTHONWARNINGS": "error"}

    heads = subprocess.run(
        [ALEMBIC, "-c", ini, "heads"], capture_output=True, text=True, env=env, check=True
    )
    upgrade = subprocess.run(
        [ALEMBIC, "-c", ini, "upgrade", "heads"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )

    assert heads.stdout.splitlines() == [
        "f1 (head)",
        f"{pgflow_head()} (pgflow) (effective head)",
    ]
    assert upgrade.returncode == 0, upgrade.stderr
    assert project.flows().keys() == {"greet"}
