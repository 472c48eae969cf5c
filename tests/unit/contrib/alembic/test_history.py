"""Reading earlier revision files offline: every form pgflow writes, and hand-written ones."""

from __future__ import annotations

from pathlib import Path

import pytest

from pgflow.contrib.alembic.history import defined_flows, read_revision
from pgflow.errors import CompileError

SQL_A = "select pgflow.create_flow('a');\nselect pgflow.add_step('a', 'one');\n"
SQL_B = "select pgflow.create_flow('b');\nselect pgflow.add_step('b', 'two');\n"


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_the_pgflow_flows_dict_is_read_and_its_loop_ignored(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "r1.py",
        f"PGFLOW_FLOWS = {{'a': {SQL_A!r}}}\n\n"
        "def upgrade():\n    for slug, sql in PGFLOW_FLOWS.items():\n"
        "        op.pgflow_apply_flow(sql, slug)\n",
    )

    assert [chunk.sql for chunk in read_revision(path)] == [SQL_A]
    assert defined_flows([path]).keys() == {"a"}


def test_literal_calls_and_constants_in_upgrade_are_read_in_order(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "r1.py",
        f"B = {SQL_B!r}\n\n"
        "def upgrade():\n"
        f"    op.pgflow_apply_flow({SQL_A!r}, 'a')\n"
        "    op.execute(B)\n"
        "    op.execute('create table t (id int)')\n"
        "    op.pgflow_remove_flow('a')\n\n"
        f"def downgrade():\n    op.pgflow_apply_flow({SQL_A!r}, 'a')\n",
    )

    chunks = read_revision(path)

    assert [c.line for c in chunks] == [4, 5, 7]
    assert defined_flows([path]).keys() == {"b"}


def test_retired_flows_are_forgotten(tmp_path: Path) -> None:
    first = write(tmp_path, "r1.py", f"PGFLOW_FLOWS = {{'a': {SQL_A!r}, 'b': {SQL_B!r}}}\n")
    second = write(tmp_path, "r2.py", f"PGFLOW_RETIRED = {{'a': {SQL_A!r}}}\n")

    flows = defined_flows([first, second])

    assert flows.keys() == {"b"}
    assert flows["b"].chunk.path == first


def test_an_unreadable_call_names_the_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, "r1.py", "def upgrade():\n    op.pgflow_apply_flow(make_sql(), 'a')\n")

    with pytest.raises(CompileError, match=r"r1.py line 2: its arguments are not literals"):
        read_revision(path)


def test_unreadable_sql_names_the_revision_file_not_a_temporary_one(tmp_path: Path) -> None:
    hidden = "do $$ begin perform pgflow.create_flow('a'); end $$;"
    path = write(tmp_path, "r1.py", f"def upgrade():\n    op.pgflow_apply_flow({hidden!r}, 'a')\n")

    with pytest.raises(CompileError) as raised:
        defined_flows([path])

    assert f"{path} (SQL of line 2)" in str(raised.value)
    assert "pgflow-alembic-" not in str(raised.value)
