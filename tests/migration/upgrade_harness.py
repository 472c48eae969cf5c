"""The upgrade harness: an older release's schema, driven the way its workers drove it.

Every schema change after a release reuses this module (docs/contributing.md):

* :func:`from_versions` lists the versions to upgrade from: every released migration
  (``pgflow/migrations/RELEASED``) older than the newest packaged one;
* :func:`install_version` installs exactly the migrations of one release,
  :func:`deploy_as_released` defines flows as that release's compiler did, and
  :func:`upgrade` runs the installer with every packaged migration, as ``pgflow install``
  does on a real upgrade;
* :class:`OldWorker` calls only the SQL API every released schema has, with the named
  parameters the released SQL API keeps (docs/sql-api.md), as a worker of the old version
  does: a schema change that breaks such a worker mid-upgrade fails the tests that use it;
* :func:`run_states` shows that a scenario left what it says it left;
* :func:`snapshot` and :func:`unchanged` show that finished runs keep their rows (columns
  added by a later migration are ignored; changed or dropped ones are reported);
* :func:`catalog_difference` compares an upgraded schema with a fresh install.
"""

from __future__ import annotations

import difflib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from importlib.resources import files
from typing import Any, LiteralString

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from pgflow import Flow
from pgflow.compiler import compile_flow
from pgflow.compiler.render import render_script
from pgflow.db.schema import InstallResult, SchemaManager
from pgflow.migrations import migrations, parse_manifest
from tests.migration.test_convergence import dump_sections

Row = dict[str, Any]

_CLAIM = (
    "select run_id, step_slug, task_index, attempt, input from pgflow.claim_tasks("
    "flow_slugs => %(flows)s, worker_id => %(worker)s, max_tasks => %(n)s)"
)
# Only the columns the tests read: others may hold values Python cannot load ('infinity').
_REPORTED = "select status, output, attempts_count, available_at from "
_COMPLETE = (
    _REPORTED + "pgflow.complete_task(run_id => %(run_id)s, step_slug => %(step_slug)s, "
    "task_index => %(task_index)s, output => %(output)s, attempt => %(attempt)s)"
)
_FAIL = (
    _REPORTED + "pgflow.fail_task(run_id => %(run_id)s, step_slug => %(step_slug)s, "
    "task_index => %(task_index)s, error_message => %(message)s, attempt => %(attempt)s)"
)
_STATES = """
select r.run_id, r.status,
  array(select t.status from pgflow.step_tasks t where t.run_id = r.run_id order by 1) as tasks
from pgflow.runs r where r.run_id = any(%(ids)s)
"""
_SNAPSHOT = """
select 'runs' as tbl, r.run_id, '' as step_slug, -1 as task_index, to_jsonb(r) as row
from pgflow.runs r where r.run_id = any(%(ids)s)
union all
select 'step_states', s.run_id, s.step_slug, -1, to_jsonb(s)
from pgflow.step_states s where s.run_id = any(%(ids)s)
union all
select 'step_tasks', t.run_id, t.step_slug, t.task_index, to_jsonb(t)
from pgflow.step_tasks t where t.run_id = any(%(ids)s)
"""


def released_versions() -> list[int]:
    """The ids of the released migrations, from ``pgflow/migrations/RELEASED``."""
    text = (files("pgflow.migrations") / "RELEASED").read_text(encoding="utf-8")
    return sorted(int(name[:4]) for name in parse_manifest(text))


def head_version() -> int:
    """The newest packaged migration."""
    return migrations()[-1].id


def from_versions() -> list[int]:
    """Every released version an upgrade to the packaged head starts from."""
    return [v for v in released_versions() if v < head_version()]


def install_version(url: str, version: int) -> InstallResult:
    """Install the schema exactly as the release whose newest migration is ``version``."""
    with psycopg.connect(url, autocommit=True) as conn:
        return SchemaManager(conn, migrations()[:version]).install()


def deploy_as_released(conn: psycopg.Connection[Any], flows: Sequence[Flow]) -> None:
    """Define flows as the old release's compiler did: its ``create_flow`` lacks tunables
    added later (``input_schema``, ``retention``), so the arguments it does not declare are
    left out of the compiled SQL (the shape and checksum are the same)."""
    row = conn.execute(
        "select proargnames from pg_catalog.pg_proc"
        " where proname = 'create_flow' and pronamespace = 'pgflow'::regnamespace"
    ).fetchone()
    assert row is not None, "no pgflow.create_flow installed"
    known = set(row[0])
    for flow in flows:
        create, *steps = compile_flow(flow).calls
        create = replace(create, kwargs=tuple(kw for kw in create.kwargs if kw[0] in known))
        conn.execute(render_script((f"as released: {flow.slug}",), (create, *steps)).encode())


def upgrade(url: str) -> InstallResult:
    """Upgrade to this package's schema: the installer with every packaged migration."""
    with psycopg.connect(url, autocommit=True) as conn:
        return SchemaManager(conn).install()


@dataclass(frozen=True)
class Task:
    """A task an :class:`OldWorker` claimed: what it needs to report it later."""

    run_id: uuid.UUID
    step_slug: str
    task_index: int
    attempt: int
    input: Any


class OldWorker:
    """Drives runs through the SQL functions directly, as a worker of an old release did.

    Each claim names the run it expects, so a scenario fails loudly (instead of silently
    leasing another run's task) when claim order changes.
    """

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self.conn = conn
        self.worker_id = uuid.uuid4()

    def start(self, flow_slug: str, input: Any) -> uuid.UUID:
        """Start a run with a caller-chosen run id, and return that id."""
        run_id = uuid.uuid4()
        self.conn.execute(
            "select pgflow.start_flow(flow_slug => %s, input => %s, run_id => %s)",
            [flow_slug, Jsonb(input), run_id],
        )
        return run_id

    def claim(self, flow_slug: str, run_id: uuid.UUID, n: int = 1) -> list[Task]:
        """Claim ``n`` tasks of ``flow_slug``, all of which must belong to ``run_id``."""
        params = {"flows": [flow_slug], "worker": self.worker_id, "n": n}
        with self.conn.cursor(row_factory=dict_row) as cur:
            tasks = [Task(**row) for row in cur.execute(_CLAIM, params).fetchall()]
        assert len(tasks) == n and {t.run_id for t in tasks} == {run_id}, tasks
        return tasks

    def claim_one(self, flow_slug: str, run_id: uuid.UUID) -> Task:
        """Claim the next task of ``flow_slug``, which must belong to ``run_id``."""
        return self.claim(flow_slug, run_id)[0]

    def complete(self, task: Task, output: Any) -> Row:
        """Report a task done, fenced by its attempt; return the task row afterwards."""
        return self._report(_COMPLETE, task, output=Jsonb(output))

    def fail(self, task: Task, message: str) -> Row:
        """Report a failed attempt, fenced by its attempt; return the task row afterwards."""
        return self._report(_FAIL, task, message=message)

    def cancel(self, run_id: uuid.UUID) -> None:
        """Cancel a run."""
        self.conn.execute("select pgflow.cancel_run(run_id => %s)", [run_id])

    def _report(self, statement: LiteralString, task: Task, **values: Any) -> Row:
        params = {
            "run_id": task.run_id,
            "step_slug": task.step_slug,
            "task_index": task.task_index,
            "attempt": task.attempt,
            **values,
        }
        with self.conn.cursor(row_factory=dict_row) as cur:
            row = cur.execute(statement, params).fetchone()
        assert row is not None
        return row


def run_states(
    conn: psycopg.Connection[Any], run_ids: list[uuid.UUID]
) -> dict[uuid.UUID, tuple[str, list[str]]]:
    """Each run's status and its tasks' statuses (sorted)."""
    rows = conn.execute(_STATES, {"ids": run_ids}).fetchall()
    return {run_id: (status, tasks) for run_id, status, tasks in rows}


def snapshot(conn: psycopg.Connection[Any], run_ids: list[uuid.UUID]) -> dict[tuple[Any, ...], Row]:
    """Every run, step state and task row of these runs, as JSON, keyed by table and key."""
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(_SNAPSHOT, {"ids": run_ids}).fetchall()
    return {(r["tbl"], str(r["run_id"]), r["step_slug"], r["task_index"]): r["row"] for r in rows}


def unchanged(before: dict[tuple[Any, ...], Row], after: dict[tuple[Any, ...], Row]) -> list[str]:
    """What changed between two snapshots, ignoring columns that did not exist before."""
    problems = [f"{key}: row appeared" for key in after.keys() - before.keys()]
    for key, old in before.items():
        new = after.get(key)
        if new is None:
            problems.append(f"{key}: row disappeared")
            continue
        problems += [
            f"{key}: {column} was {value!r}, is {new.get(column, '<dropped>')!r}"
            for column, value in old.items()
            if new.get(column, "<dropped>") != value
        ]
    return problems


def catalog_difference(fresh_url: str, upgraded_url: str) -> str:
    """A diff of the two ``pgflow`` schemas (pg_dump, per object); empty when they match."""
    fresh, upgraded = dump_sections(fresh_url), dump_sections(upgraded_url)
    assert any("Type: FUNCTION" in header for header in fresh), "pg_dump found no functions"
    lines: list[str] = []
    for header in sorted(fresh.keys() | upgraded.keys()):
        a, b = fresh.get(header), upgraded.get(header)
        if a != b:
            diff = difflib.unified_diff(
                (a or "<missing>").splitlines(),
                (b or "<missing>").splitlines(),
                "fresh install",
                "upgraded",
                lineterm="",
            )
            lines += [header, *diff, ""]
    return "\n".join(lines)
