"""`pgflow alembic revision`: flows frozen into revisions, applied, refused when changed."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import sqlalchemy.exc

from pgflow.compiler import compile_flow
from pgflow.contrib.alembic.retire import write_retirement
from pgflow.contrib.alembic.revision import write_revision
from pgflow.errors import CompileError
from pgflow.loader import load_flows

from .conftest import AlembicProject, pgflow_head
from .flows import GREET, GREET_AND_REPORT, GREET_CHANGED, GREET_V2, REPORT


def frozen(path: Path, constant: str = "PGFLOW_FLOWS") -> dict[str, str]:
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign) and ast.unparse(node.targets[0]) == constant:
            return dict(ast.literal_eval(node.value))
    raise AssertionError(f"{path} has no {constant}")


def revision_for(project: AlembicProject, name: str, source: str, rev_id: str) -> Path:
    flows = load_flows(str(project.flows_file(name, source)))
    result = write_revision(flows, project.ini, rev_id=rev_id)
    assert result.path is not None
    return result.path


def test_upgrade_heads_from_empty_installs_the_schema_and_the_flows(
    project: AlembicProject,
) -> None:
    path = revision_for(project, "greet_flows", GREET, "f1")
    flow = load_flows(str(project.root / "greet_flows.py"))[0]

    project.upgrade()

    assert project.flows() == {"greet": compile_flow(flow).checksum}
    assert project.alembic_versions() == {"f1"}
    assert frozen(path) == {"greet": compile_flow(flow).sql}
    started = project.query("select status from pgflow.start_flow('greet', '{}')")
    assert started == [("started",)]


def test_revision_builds_on_the_users_head_and_depends_on_the_pgflow_branch(
    project: AlembicProject,
) -> None:
    revision_for(project, "greet_flows", GREET, "f1")
    second = revision_for(project, "report_flows", REPORT, "f2")

    source = second.read_text(encoding="utf-8")
    assert 'down_revision = "f1"' in source
    assert f'depends_on = "{pgflow_head()}"' in source
    assert frozen(second).keys() == {"report"}


def test_rerunning_upgrade_is_a_no_op(project: AlembicProject) -> None:
    revision_for(project, "greet_flows", GREET, "f1")
    project.upgrade()
    before = project.query("select flow_slug, checksum, created_at from pgflow.flows")

    project.upgrade()

    assert project.query("select flow_slug, checksum, created_at from pgflow.flows") == before
    assert project.alembic_versions() == {"f1"}


def test_downgrade_removes_the_flows_and_their_runs(project: AlembicProject) -> None:
    revision_for(project, "greet_flows", GREET, "f1")
    project.upgrade()
    project.query("select pgflow.start_flow('greet', '{}')")

    project.downgrade("f1@base")

    assert project.flows() == {}
    assert project.query("select count(*) from pgflow.runs") == [(0,)]
    assert project.alembic_versions() == {pgflow_head()}


def test_a_flow_already_defined_with_the_same_shape_is_left_out(project: AlembicProject) -> None:
    first = revision_for(project, "greet_flows", GREET, "f1")
    flows = load_flows(str(project.flows_file("both", GREET_AND_REPORT)))

    result = write_revision(flows, project.ini, rev_id="f2")

    assert result.written == ("report",)
    assert result.unchanged == {"greet": f"{first} line {_line_of(first, 'PGFLOW_FLOWS')}"}
    assert result.path is not None
    assert frozen(result.path).keys() == {"report"}
    assert write_revision(flows, project.ini, rev_id="f3").path is None


def _line_of(path: Path, text: str) -> int:
    lines = path.read_text(encoding="utf-8").splitlines()
    return next(n for n, line in enumerate(lines, start=1) if line.startswith(text))


def test_a_changed_shape_is_refused_at_generation_naming_the_file(
    project: AlembicProject,
) -> None:
    first = revision_for(project, "greet_flows", GREET, "f1")
    changed = load_flows(str(project.flows_file("greet_changed", GREET_CHANGED)))

    with pytest.raises(CompileError) as raised:
        write_revision(changed, project.ini, rev_id="f2")

    message = str(raised.value)
    assert f"flow 'greet' is already defined in {first}" in message
    assert "different shape" in message
    assert '{"ok": true}' in message and '{"ok": false}' in message
    assert "greet_v2" in (raised.value.hint or "")
    assert sorted(p.name for p in project.versions.glob("*.py")) == [first.name]


def test_a_changed_shape_forced_into_the_folder_fails_the_upgrade_and_changes_nothing(
    project: AlembicProject,
) -> None:
    first = revision_for(project, "greet_flows", GREET, "f1")
    project.upgrade()
    deployed = project.flows()
    changed = compile_flow(load_flows(str(project.flows_file("changed", GREET_CHANGED)))[0])
    forced = first.read_text(encoding="utf-8").replace('revision = "f1"', 'revision = "f2"')
    forced = forced.replace("down_revision = None", 'down_revision = "f1"')
    forced = forced.replace(frozen(first)["greet"], changed.sql)
    (project.versions / "f2_forced.py").write_text(forced, encoding="utf-8")

    with pytest.raises(sqlalchemy.exc.DBAPIError) as raised:
        project.upgrade()

    assert raised.value.orig is not None
    assert getattr(raised.value.orig, "sqlstate", None) == "PGF04"
    assert "flow 'greet' already exists with a different shape" in str(raised.value.orig)
    assert project.flows() == deployed
    assert project.alembic_versions() == {"f1"}


def test_a_changed_shape_forced_from_empty_leaves_the_database_empty(
    project: AlembicProject,
) -> None:
    first = revision_for(project, "greet_flows", GREET, "f1")
    changed = compile_flow(load_flows(str(project.flows_file("changed", GREET_CHANGED)))[0])
    forced = first.read_text(encoding="utf-8").replace('revision = "f1"', 'revision = "f2"')
    forced = forced.replace("down_revision = None", 'down_revision = "f1"')
    (project.versions / "f2_forced.py").write_text(
        forced.replace(frozen(first)["greet"], changed.sql), encoding="utf-8"
    )

    with pytest.raises(sqlalchemy.exc.DBAPIError):
        project.upgrade()

    assert project.query("select to_regnamespace('pgflow')") == [(None,)]
    assert project.alembic_versions() == set()


def test_versioning_a_flow_and_retiring_the_old_slug(project: AlembicProject) -> None:
    revision_for(project, "greet_flows", GREET, "f1")
    revision_for(project, "greet_v2_flows", GREET_V2, "f2")
    project.upgrade()
    project.query("select pgflow.start_flow('greet', '{}')")

    retired = write_retirement(["greet"], project.ini, rev_id="f3")
    project.upgrade()

    assert project.flows().keys() == {"greet_v2"}
    assert project.query("select count(*) from pgflow.runs") == [(0,)]
    assert frozen(retired.path, "PGFLOW_RETIRED") == frozen(
        project.versions / "f1_create_flows_greet.py"
    )
    project.downgrade("f2")
    assert project.flows().keys() == {"greet", "greet_v2"}


def test_retiring_an_unknown_flow_is_refused(project: AlembicProject) -> None:
    revision_for(project, "greet_flows", GREET, "f1")

    with pytest.raises(CompileError, match="no earlier revision defines 'nope'"):
        write_retirement(["nope"], project.ini, rev_id="f2")
