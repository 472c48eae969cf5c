"""Offline mode (`alembic upgrade --sql`): stable bytes, intact JSON and colons, runnable."""

from __future__ import annotations

import json

import psycopg
import pytest

from pgflow.contrib.alembic.revision import write_revision
from pgflow.errors import CompileError
from pgflow.loader import load_flows
from pgflow.migrations import migrations

from .conftest import AlembicProject
from .flows import GREET

# A hand-written revision in pgflow's own SQL style: compact JSON, `:=`, and `'a:b'`
# (plain op.execute would turn `:1` into a bind parameter; op.pgflow_apply_flow escapes).
HAND_WRITTEN = '''\
"""hand-written pgflow SQL"""

from alembic import op

import pgflow.contrib.alembic.ops  # noqa: F401

revision = "h1"
down_revision = "f1"
branch_labels = None
depends_on = "pgflow_0001"


def upgrade() -> None:
    op.pgflow_apply_flow(
        "select pgflow.create_flow('compact', timeout := 30);\\n"
        "select pgflow.add_step('compact', 'first', "
        "required_input_pattern => '{\\"a\\":1,\\"b\\":{\\"c\\":true}}'::jsonb);\\n"
        "select 'label:value' as note",
        "compact",
    )


def downgrade() -> None:
    op.pgflow_remove_flow("compact")
'''


def prepared(project: AlembicProject) -> AlembicProject:
    flows = load_flows(str(project.flows_file("greet_flows", GREET)))
    write_revision(flows, project.ini, rev_id="f1")
    (project.versions / "h1_hand_written.py").write_text(HAND_WRITTEN, encoding="utf-8")
    return project


def test_offline_output_is_byte_stable(project: AlembicProject) -> None:
    prepared(project)

    assert project.offline() == project.offline()


def test_offline_output_keeps_json_literals_and_colons_intact(project: AlembicProject) -> None:
    script = prepared(project).offline()

    assert """'{"hello": {"ok": true}}'""" in script  # json.dumps-style separators
    assert """'{"a":1,"b":{"c":true}}'::jsonb""" in script  # compact JSON
    assert "timeout := 30" in script
    assert "'label:value'" in script
    assert "':completed'" in script  # from the schema migration itself
    assert "NULL}" not in script and "\\:" not in script and "%%" not in script
    assert script.count(migrations()[0].checksum) == 1


def test_offline_script_runs_on_an_empty_database(project: AlembicProject) -> None:
    script = prepared(project).offline()

    with psycopg.connect(project.db_url, autocommit=True) as conn:
        conn.execute(script.encode())

    assert project.flows().keys() == {"greet", "compact"}
    assert project.alembic_versions() == {"h1"}
    installed = project.query("select id, name, checksum from pgflow.schema_migrations")
    assert installed == [(m.id, m.name, m.checksum) for m in migrations()]


def test_online_upgrade_applies_the_same_literals(project: AlembicProject) -> None:
    prepared(project).upgrade()

    rows = project.query(
        "select flow_slug, step_slug, required_input_pattern from pgflow.steps order by 1, 2"
    )
    patterns = {(flow, step): pattern for flow, step, pattern in rows}
    assert patterns[("compact", "first")] == json.loads('{"a":1,"b":{"c":true}}')
    assert patterns[("greet", "shout")] == {"hello": {"ok": True}}
    assert project.query("select opt_timeout from pgflow.flows where flow_slug = 'compact'") == [
        (30,)
    ]


COMPACT_CHANGED = """
from pgflow import Flow

flow = Flow("compact")


@flow.step()
def other(input: dict) -> int:
    return 1
"""


def test_hand_written_revisions_guard_new_ones_too(project: AlembicProject) -> None:
    prepared(project)
    changed = load_flows(str(project.flows_file("compact_changed", COMPACT_CHANGED)))

    with pytest.raises(CompileError) as raised:
        write_revision(changed, project.ini, rev_id="f2")

    assert f"already defined in {project.versions / 'h1_hand_written.py'} line 14" in str(
        raised.value
    )
    assert "'first'" in str(raised.value)
