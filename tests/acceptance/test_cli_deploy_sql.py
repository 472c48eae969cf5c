"""`pgflow deploy [--dev] FILE.sql|DIR`: compiled SQL with the checksum guard of a .py deploy."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import psycopg
from click.testing import CliRunner, Result

from pgflow import Flow
from pgflow.cli import main
from pgflow.compiler import compile_flow
from pgflow.loader import load_flows

FLOW = """
from pgflow import Flow

flow = Flow("greet", timeout={timeout})

@flow.step()
def hello(input: dict) -> str:
    return "hi"
{extra}
"""
SHOUT = """
@flow.step(depends_on=["hello"])
def shout(hello: str) -> str:
    return hello.upper()
"""
# As pgflow's TypeScript compiler writes it: no shape, no checksum, camelCase step slugs.
TYPESCRIPT_SQL = """\
SELECT pgflow.create_flow('analyze_website', max_attempts => 3, timeout => 60);
SELECT pgflow.add_step('analyze_website', 'website');
SELECT pgflow.add_step('analyze_website', 'sentiment', ARRAY['website'], max_attempts => 5);
SELECT pgflow.add_step('analyze_website', 'saveToDb', ARRAY['sentiment', 'website']);
"""


def compiled(tmp_path: Path, name: str, *, timeout: int = 60, shout: bool = False) -> Path:
    """Compile the `greet` flow (optionally changed) into ``name``."""
    source = tmp_path / f"{name}.py"
    source.write_text(textwrap.dedent(FLOW.format(timeout=timeout, extra=SHOUT if shout else "")))
    (flow,) = load_flows(str(source))
    path = tmp_path / name
    path.write_text(compile_flow(flow).sql)
    return path


def deploy(db_url: str, target: Path, *args: str) -> Result:
    return CliRunner().invoke(main, ["deploy", str(target), "--database-url", db_url, *args])


def assert_user_error(result: Result, *fragments: str) -> None:
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1 and "Hint: " in result.stderr, result.stderr
    for fragment in fragments:
        assert fragment in result.stderr, result.stderr


def flows_in(db_url: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(db_url) as conn:
        return conn.execute(
            "select f.flow_slug, f.opt_timeout, count(s.step_slug) from pgflow.flows f "
            "left join pgflow.steps s using (flow_slug) group by 1, 2 order by 1"
        ).fetchall()


def test_a_compiled_file_is_created_unchanged_updated_refused_and_recreated(
    db_url: str, tmp_path: Path
) -> None:
    first = compiled(tmp_path, "v1.sql")
    created = deploy(db_url, first)
    assert created.exit_code == 0, created.output
    assert "greet" in created.stderr and "created" in created.stderr
    assert flows_in(db_url) == [("greet", 60, 1)]
    assert "unchanged" in deploy(db_url, first).stderr

    slower = deploy(db_url, compiled(tmp_path, "v1b.sql", timeout=90))
    assert slower.exit_code == 0 and "options updated" in slower.stderr
    assert "flow.timeout 60 -> 90" in slower.stderr

    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("select pgflow.start_flow('greet', '{}')")
    changed = compiled(tmp_path, "v2.sql", shout=True)
    refused = deploy(db_url, changed)
    assert_user_error(
        refused,
        f"flow 'greet' ({changed}) is deployed with a different shape",
        "step 2 ('shout') is missing in the deployed",
        "Nothing was deployed",
        "greet_v2",
    )
    assert "refused" in refused.stderr  # the same report as for a .py file
    assert flows_in(db_url) == [("greet", 90, 1)]

    recreated = deploy(db_url, changed, "--dev")
    assert recreated.exit_code == 0, recreated.output
    assert "recreated" in recreated.stderr and "deleted 1 run(s)" in recreated.stderr
    assert flows_in(db_url) == [("greet", 60, 2)]


def test_a_folder_is_applied_in_name_order_in_one_transaction(db_url: str, tmp_path: Path) -> None:
    folder = tmp_path / "migrations"
    folder.mkdir()
    compiled(tmp_path, "greet.sql").rename(folder / "20260101000000_create_greet.sql")
    (folder / "20260102000000_create_analyze_website.sql").write_text(TYPESCRIPT_SQL)
    (folder / "README.md").write_text("not SQL, not read")
    result = deploy(db_url, folder)
    assert result.exit_code == 0, result.output
    assert flows_in(db_url) == [("analyze_website", 60, 3), ("greet", 60, 1)]
    assert deploy(db_url, folder).stderr.count("unchanged") == 2
    with psycopg.connect(db_url) as conn:
        started = conn.execute(
            "select remaining_steps from pgflow.start_flow('analyze_website', '{}')"
        )
        assert started.fetchone() == (3,)


def test_begin_and_commit_around_the_calls_are_skipped(db_url: str, tmp_path: Path) -> None:
    path = tmp_path / "wrapped.sql"
    path.write_text("BEGIN;\n" + compiled(tmp_path, "plain.sql").read_text() + ";\nCOMMIT;\n")
    assert deploy(db_url, path).exit_code == 0
    assert flows_in(db_url) == [("greet", 60, 1)]


def test_sql_that_is_not_compiled_pgflow_sql_is_refused_and_nothing_applied(
    db_url: str, tmp_path: Path
) -> None:
    folder = tmp_path / "mixed"
    folder.mkdir()
    compiled(tmp_path, "greet.sql").rename(folder / "1_greet.sql")
    (folder / "2_table.sql").write_text("create table orders (id int);\n")
    assert_user_error(
        deploy(db_url, folder),
        f"{folder / '2_table.sql'} is not compiled pgflow SQL: line 1 ('create table orders",
        "pgflow compile",
    )
    plain = tmp_path / "plain.sql"
    plain.write_text("-- nothing but a comment\n")
    assert_user_error(deploy(db_url, plain), "is not compiled pgflow SQL: it defines no flow")
    deletes = tmp_path / "delete.sql"
    deletes.write_text("select pgflow.delete_flow_and_data('greet');\n")
    assert_user_error(deploy(db_url, deletes), "line 1 deletes a flow", "migration tool")
    assert flows_in(db_url) == []
    with psycopg.connect(db_url) as conn:
        assert conn.execute("select to_regclass('orders')").fetchone() == (None,)


def test_an_empty_folder_or_a_missing_file_is_a_one_line_error(db_url: str, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    assert_user_error(deploy(db_url, empty), f"the folder {empty} holds no .sql file")
    assert_user_error(deploy(db_url, tmp_path / "missing.sql"), "no such file or folder")


def test_two_files_with_two_shapes_of_one_slug_are_refused(db_url: str, tmp_path: Path) -> None:
    folder = tmp_path / "conflict"
    folder.mkdir()
    compiled(tmp_path, "a.sql").rename(folder / "1.sql")
    compiled(tmp_path, "b.sql", shout=True).rename(folder / "2.sql")
    assert_user_error(deploy(db_url, folder), "flow 'greet' is defined with one shape in")
    assert flows_in(db_url) == []


def test_a_changed_schedule_in_a_compiled_file_is_reported(db_url: str, tmp_path: Path) -> None:
    def with_schedule(name: str, cron: str) -> Path:
        flow = Flow("ticking_sql").step("a", lambda input: 1).schedule(cron)
        path = tmp_path / name
        path.write_text(compile_flow(flow).sql)
        return path

    assert deploy(db_url, with_schedule("v1.sql", "0 * * * *")).exit_code == 0
    changed = deploy(db_url, with_schedule("v2.sql", "30 * * * *"))
    assert changed.exit_code == 0, changed.output
    assert "options updated" in changed.output
    assert "schedule default 0 * * * *" in changed.output and "30 * * * *" in changed.output
