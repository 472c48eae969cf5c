"""retry, prune and validated starts through the CLI, as an operator uses them."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from click.testing import CliRunner, Result
from psycopg.rows import dict_row

from pgflow import Worker
from pgflow.cli import main
from pgflow.loader import load_flows
from tests.acceptance.test_cli_runs import assert_user_error, restore_logging
from tests.integration.runtime import WORKER_DEFAULTS

__all__ = ["restore_logging"]  # the autouse fixture, shared

FLOWS = """
from pathlib import Path
from pydantic import BaseModel
from pgflow import Flow

FIXED = Path(__file__).with_name("fixed")

class Order(BaseModel):
    order_id: int
    items: list[str]

flow = Flow("orders", input=Order, max_attempts=1)

@flow.step()
def load(input: Order) -> list[str]:
    return input.items

@flow.step(depends_on=[load])
def price(load: list[str]) -> int:
    if not FIXED.exists():
        raise RuntimeError("price list missing")
    return 10 * len(load)
"""


def pgflow(db_url: str, *args: str) -> Result:
    return CliRunner().invoke(main, [*args, "--database-url", db_url])


@pytest.fixture
def flows_file(tmp_path: Path, db_url: str) -> Path:
    path = tmp_path / "orders_flows.py"
    path.write_text(FLOWS)
    assert pgflow(db_url, "deploy", str(path)).exit_code == 0
    return path


@pytest.fixture
def worker(db_url: str, flows_file: Path) -> Iterator[Worker]:
    running = Worker(load_flows(str(flows_file)), db_url, **WORKER_DEFAULTS)
    thread = threading.Thread(target=running.run, daemon=True)
    thread.start()
    yield running
    running.stop()
    thread.join(10)


def _rows(db_url: str, sql: str, *params: Any) -> list[dict[str, Any]]:
    with psycopg.connect(db_url, autocommit=True, row_factory=dict_row) as conn:
        return conn.execute(sql, params or None).fetchall()


def _snapshot(db_url: str) -> list[list[dict[str, Any]]]:
    return [
        _rows(db_url, f"select * from pgflow.{table} order by 1, 2")
        for table in ("runs", "step_states", "step_tasks")
    ]


def _failed_run(db_url: str) -> str:
    """Start a run with --wait and let the worker fail it; return the id it printed."""
    waited = pgflow(db_url, "start", "orders", "--input", '{"order_id": 1, "items": ["a"]}',
                    "--wait", "--timeout", "30")  # fmt: skip
    assert waited.exit_code == 1 and "price list missing" in waited.stderr, waited.output
    first = waited.stderr.splitlines()[0]
    assert first.startswith("Started run "), waited.stderr
    return first.split()[2]


def _start_runs(db_url: str, flow: str, count: int) -> list[str]:
    with psycopg.connect(db_url, autocommit=True) as conn:
        return [
            str(
                conn.execute("select run_id from pgflow.start_flow(%s, '{}')", [flow]).fetchone()[0]
            )
            for _ in range(count)
        ]


def _cancel(db_url: str, *run_ids: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        for run_id in run_ids:
            conn.execute("select pgflow.cancel_run(%s)", [run_id])


def test_a_failed_run_is_fixed_and_retried_from_the_cli(
    db_url: str, flows_file: Path, worker: Worker
) -> None:
    run_id = _failed_run(db_url)
    flows_file.with_name("fixed").write_text("")  # the fix
    retried = pgflow(db_url, "retry", run_id, "--wait", "--timeout", "30")
    assert retried.exit_code == 0, retried.output
    lines = retried.stdout.splitlines()
    assert lines[0] == run_id and json.loads("\n".join(lines[1:])) == {"price": 10}
    assert f"Retrying run {run_id} of flow 'orders'; running again: price; kept: load" in (
        retried.stderr
    )
    load = _rows(db_url, "select attempts_count from pgflow.step_tasks where step_slug = 'load'")
    assert load == [{"attempts_count": 1}]  # the completed step was not run again
    again = pgflow(db_url, "retry", run_id)
    assert again.exit_code == 0 and "is completed: nothing to retry" in again.stderr


def test_retry_without_wait_prints_the_id_and_leaves_the_run_to_workers(
    db_url: str, flows_file: Path
) -> None:
    (run_id,) = _start_runs(db_url, "orders", 1)
    _cancel(db_url, run_id)
    retried = pgflow(db_url, "retry", run_id)
    assert retried.exit_code == 0, retried.output
    assert retried.stdout.strip() == run_id
    assert "running again: load, price" in retried.stderr
    assert _rows(db_url, "select status from pgflow.runs") == [{"status": "started"}]


@pytest.mark.parametrize(
    ("run_id", "fragment"),
    [
        ("7f0c2a6e-3b1d-4e5f-9a8b-0c1d2e3f4a5b", "unknown run"),
        ("12345", "'12345' is not a run id"),
        ("", "is not a run id"),
    ],
)
def test_retry_of_an_unknown_or_malformed_run_id_changes_nothing(
    db_url: str, flows_file: Path, run_id: str, fragment: str
) -> None:
    _cancel(db_url, *_start_runs(db_url, "orders", 1))
    before = _snapshot(db_url)
    result = pgflow(db_url, "retry", run_id)
    assert_user_error(result, fragment)
    assert len(result.stderr.splitlines()) == 2  # one error line, one hint line
    assert _snapshot(db_url) == before


def test_start_refuses_input_the_stored_schema_rejects(db_url: str, flows_file: Path) -> None:
    bad = pgflow(db_url, "start", "orders", "--input", '{"order_id": "x", "items": [1]}')
    assert_user_error(bad, "invalid input for flow 'orders' (2 errors; nothing was started)")
    assert "  input.items[0]: 1 is not of type 'string'" in bad.stderr
    assert "  input.order_id: 'x' is not of type 'integer'" in bad.stderr
    missing = pgflow(db_url, "start", "orders")
    assert_user_error(missing, "no --input given, and flow 'orders' needs one")
    assert "  input: 'items' is a required property" in missing.stderr
    assert "--input" in missing.stderr.splitlines()[-1]  # the hint says how
    assert _rows(db_url, "select * from pgflow.runs") == []


def _age(db_url: str, days: int) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(
            "update pgflow.runs set started_at = now() - make_interval(days => %s),"
            " finished_at = case when status <> 'started' then now() - make_interval(days => %s)"
            " end",
            [days, days],
        )


def test_prune_prints_what_it_removed_per_flow_and_status(db_url: str, flows_file: Path) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("select pgflow.create_flow('other')")
        conn.execute("select pgflow.add_step('other', 'x')")
    done_1, done_2, live = _start_runs(db_url, "orders", 3)
    (other,) = _start_runs(db_url, "other", 1)
    _cancel(db_url, done_1, done_2, other)
    _age(db_url, 40)
    before = _snapshot(db_url)
    for args, fragment in [
        (("--older-than", "30 days"), "--older-than '30 days' is not a valid duration"),
        (("--older-than", "0d"), "it must be longer than 0"),
        (("--older-than", "-5d"), "is not a valid duration"),
        (("--older-than", "1d", "--status", "started"), "live runs are never pruned"),
        (("--older-than", "1d", "--status", "done"), "status 'done': unknown status"),
    ]:
        result = pgflow(db_url, "prune", *args)
        assert_user_error(result, fragment)
        assert len(result.stderr.splitlines()) == 2
    assert _snapshot(db_url) == before
    nothing = pgflow(db_url, "prune", "--older-than", "41d")
    assert nothing.stdout == "Nothing to prune: no runs that finished more than 41d ago\n"
    failed_only = pgflow(db_url, "prune", "--older-than", "30d", "--status", "failed")
    assert "matching the filters" in failed_only.stdout
    pruned = pgflow(db_url, "prune", "--older-than", "30d", "--flow", "orders", "--batch-size", "1")
    assert pruned.exit_code == 0, pruned.output
    assert pruned.stdout.splitlines() == [
        "Pruned 2 runs that finished more than 30d ago:",
        "  flow    status     runs",
        "  orders  cancelled     2",
    ]
    rest = pgflow(db_url, "prune", "--older-than", "4w", "--status", "completed,cancelled")
    assert rest.stdout.splitlines()[1:] == [
        "  flow   status     runs",
        "  other  cancelled     1",
    ]
    assert _rows(db_url, "select run_id::text, status from pgflow.runs") == [
        {"run_id": live, "status": "started"}  # live runs stay, however old
    ]


def test_a_retry_that_fails_again_at_once_exits_1_with_the_error(db_url: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("select pgflow.create_flow('mapper')")
        conn.execute("select pgflow.add_step('mapper', 'm', step_type => 'map')")
    (run_id,) = _start_runs(db_url, "mapper", 1)  # a root map over {}: fails at once
    result = pgflow(db_url, "retry", run_id)
    assert_user_error(result, "failed again at once", "TYPE_VIOLATION")
    assert result.stdout.strip() == run_id
