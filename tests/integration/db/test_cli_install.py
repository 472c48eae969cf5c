"""`pgflow install --database-url`: output, idempotence and user errors."""

from __future__ import annotations

from click.testing import CliRunner

from pgflow.cli import main
from pgflow.migrations import migrations


def test_install_prints_what_it_applied_then_up_to_date(empty_db_url: str) -> None:
    runner = CliRunner()
    first = runner.invoke(main, ["install", "--database-url", empty_db_url])
    assert first.exit_code == 0, first.output
    assert first.stderr == ""  # no embedded-server line for an explicit URL
    expected = [f"Applied migration {m.filename}" for m in migrations()]
    expected.append(f"pgflow schema installed at version {migrations()[-1].id}")
    assert first.stdout.splitlines() == expected

    second = runner.invoke(main, ["install", "--database-url", empty_db_url])
    assert second.exit_code == 0
    assert second.stdout == f"pgflow schema already up to date (version {migrations()[-1].id})\n"


def test_install_reads_pgflow_database_url(empty_db_url: str) -> None:
    result = CliRunner().invoke(main, ["install"], env={"PGFLOW_DATABASE_URL": empty_db_url})
    assert result.exit_code == 0, result.output
    assert "Applied migration" in result.stdout


def test_unreachable_database_is_exit_1_with_hint_and_no_password() -> None:
    url = "postgresql://app:hunter2@127.0.0.1:1/app?connect_timeout=2"
    result = CliRunner().invoke(main, ["install", "--database-url", url])
    assert result.exit_code == 1
    assert result.stderr.startswith(
        "Error: could not connect to Postgres at postgresql://app@127.0.0.1:1/app"
    )
    assert "\nHint: Check that the server is running" in result.stderr
    assert "hunter2" not in result.output
    assert "Traceback" not in result.output


def test_usage_error_is_exit_2() -> None:
    assert CliRunner().invoke(main, ["install", "--database-url"]).exit_code == 2
