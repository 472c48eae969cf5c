"""The root group's contract: exit 1 with Error/Hint lines for pgflow errors, 2 for usage."""

from __future__ import annotations

import click
import psycopg
import pytest
from click.testing import CliRunner

from pgflow.cli import main
from pgflow.cli._group import PgflowGroup
from pgflow.errors import SchemaError


@pytest.fixture
def group() -> click.Group:
    @click.group(cls=PgflowGroup)
    def root() -> None:
        """A throw-away root group."""

    @root.command()
    def fails() -> None:
        raise SchemaError("the schema is newer than this package", hint="Upgrade pgflow-py.")

    @root.command()
    def fails_without_hint() -> None:
        raise SchemaError("no hint here")

    @root.command()
    def driver_error() -> None:
        raise psycopg.OperationalError("connection failed: server closed the connection")

    @root.command()
    def crashes() -> None:
        raise RuntimeError("a bug")

    @root.group()
    def sub() -> None:
        """A nested group."""

    @sub.command()
    def deep() -> None:
        raise SchemaError("deep failure", hint="Do the thing.")

    return root


def run(group: click.Group, *args: str) -> click.testing.Result:
    return CliRunner().invoke(group, list(args))


def test_pgflow_error_exits_1_with_error_and_hint_lines(group: click.Group) -> None:
    result = run(group, "fails")
    assert result.exit_code == 1
    assert result.stderr == (
        "Error: the schema is newer than this package\nHint: Upgrade pgflow-py.\n"
    )
    assert "Traceback" not in result.output
    assert result.stdout == ""


def test_no_hint_line_when_there_is_no_hint(group: click.Group) -> None:
    result = run(group, "fails-without-hint")
    assert (result.exit_code, result.stderr) == (1, "Error: no hint here\n")


def test_errors_in_nested_groups_are_reported_too(group: click.Group) -> None:
    result = run(group, "sub", "deep")
    assert (result.exit_code, result.stderr) == (1, "Error: deep failure\nHint: Do the thing.\n")


def test_stray_driver_errors_are_translated(group: click.Group) -> None:
    result = run(group, "driver-error")
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: could not use Postgres: connection failed")
    assert "Hint: Check that the server is running" in result.stderr


def test_bugs_are_not_disguised_as_user_errors(group: click.Group) -> None:
    result = run(group, "crashes")
    assert result.exit_code == 1
    assert isinstance(result.exception, RuntimeError)


def test_usage_errors_exit_2(group: click.Group) -> None:
    assert run(group, "no-such-command").exit_code == 2
    assert run(group, "fails", "--bogus-option").exit_code == 2


def test_real_main_uses_the_group_and_has_the_commands() -> None:
    assert isinstance(main, PgflowGroup)
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0
    assert "install" in result.output and "embedded" in result.output
    assert CliRunner().invoke(main, ["install", "--help"]).output.count("--database-url") == 1
