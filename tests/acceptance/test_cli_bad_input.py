"""Bad input on the command line: exit 1 with a message and a hint, nothing written.

Every case fingerprints the pgflow tables before and after the command.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner, Result
from psycopg import sql

from pgflow.cli import main

FLOWS = """\
from pydantic import BaseModel
from pgflow import Flow

class Order(BaseModel):
    order_id: int

flow = Flow("orders", input=Order).step("confirm", lambda input: input.order_id)
"""


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    logger = logging.getLogger("pgflow")
    saved = (logger.handlers[:], logger.level, logger.propagate)
    yield
    logger.handlers[:], logger.level, logger.propagate = saved


def pgflow(db_url: str, *args: str) -> Result:
    return CliRunner().invoke(main, [*args, "--database-url", db_url])


def tables(db_url: str) -> dict[str, list[str]]:
    with psycopg.connect(db_url, autocommit=True) as conn:
        names = [
            r[0]
            for r in conn.execute(
                "select tablename from pg_tables where schemaname = 'pgflow' order by 1"
            )
        ]
        rows = "select t::text from pgflow.{} t order by 1"
        return {
            name: [r[0] for r in conn.execute(sql.SQL(rows).format(sql.Identifier(name)))]
            for name in names
        }


@pytest.fixture
def flows_file(tmp_path: Path) -> Path:
    path = tmp_path / "orders.py"
    path.write_text(FLOWS)
    return path


def assert_refused(result: Result, *fragments: str) -> None:
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    assert any(line.startswith("Hint: ") for line in result.stderr.splitlines()), result.stderr
    for fragment in fragments:
        assert fragment in result.stderr, result.stderr


BAD_JSON = {
    "truncated": ("{bad", "not valid JSON"),
    "trailing-comma": ('{"order_id": 1,}', "not valid JSON"),
    "nan": ('{"order_id": NaN}', "not valid JSON"),
    "infinity": ('{"x": Infinity}', "not valid JSON"),
    "deep": ("[" * 100_000 + "]" * 100_000, "--input"),
    "huge-int": ('{"order_id": ' + "9" * 5000 + "}", "--input"),
}


@pytest.mark.parametrize(("text", "fragment"), BAD_JSON.values(), ids=BAD_JSON.keys())
def test_malformed_json_writes_nothing(
    db_url: str, flows_file: Path, text: str, fragment: str
) -> None:
    assert pgflow(db_url, "deploy", str(flows_file)).exit_code == 0
    before = tables(db_url)
    assert_refused(pgflow(db_url, "start", "orders", "--input", text), fragment)
    assert_refused(pgflow(db_url, "run", str(flows_file), "--input", text), fragment)
    assert tables(db_url) == before


def test_input_files_that_cannot_be_read_write_nothing(
    db_url: str, flows_file: Path, tmp_path: Path
) -> None:
    assert pgflow(db_url, "deploy", str(flows_file)).exit_code == 0
    binary = tmp_path / "input.bin"
    binary.write_bytes(b"\xff\xfe{}")
    before = tables(db_url)
    assert_refused(pgflow(db_url, "start", "orders", "--input", f"@{binary}"), "input.bin")
    assert_refused(pgflow(db_url, "start", "orders", "--input", "@nope.json"), "nope.json")
    assert tables(db_url) == before


def test_input_the_model_refuses_writes_nothing(db_url: str, flows_file: Path) -> None:
    before = tables(db_url)  # run validates before it installs or deploys anything
    result = pgflow(db_url, "run", str(flows_file), "--input", '{"order_id": "x"}')
    assert_refused(result, "invalid input for flow 'orders'")
    assert tables(db_url) == before


def test_unknown_slugs_and_run_ids_write_nothing(db_url: str, flows_file: Path) -> None:
    assert pgflow(db_url, "deploy", str(flows_file)).exit_code == 0
    before = tables(db_url)
    assert_refused(pgflow(db_url, "start", "nope", "--input", "{}"), "unknown flow 'nope'")
    assert_refused(
        pgflow(db_url, "start", "x'); drop table pgflow.runs; --", "--input", "{}"),
        "unknown flow",
    )
    for run_id in (str(uuid.uuid4()), "not-a-uuid", "'; delete from pgflow.runs; --"):
        assert_refused(pgflow(db_url, "status", run_id), "run")
        assert_refused(pgflow(db_url, "cancel", run_id), "run")
    assert tables(db_url) == before
