"""The embedded server: first start, reuse, stop, restart, long paths, and the CLI on top."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner
from psycopg.conninfo import conninfo_to_dict

from pgflow.cli import main
from pgflow.db import embedded
from pgflow.db.target import resolve_database
from pgflow.migrations import migrations
from pgflow.testing import temporary_project

SOCKET_PATH_LIMIT = 107  # sun_path is 108 bytes on Linux, including the final NUL


def server_facts(url: str) -> tuple[str, str, object]:
    """(database, listen_addresses, postmaster start time): the last changes on restart."""
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "select current_database(), current_setting('listen_addresses'),"
            " pg_postmaster_start_time()"
        ).fetchone()
    assert row is not None
    return row


@pytest.fixture(scope="module")
def project() -> Iterator[Path]:
    """One project (and server) for the module: initdb is the slow part."""
    with temporary_project() as folder:
        yield folder


def test_first_start_creates_the_pgflow_database_on_a_socket_only(project: Path) -> None:
    pgdata = embedded.data_dir(project)
    assert pgdata == project.resolve() / ".pgflow" / "pgdata"
    url = embedded.start_embedded(pgdata)
    database, listen, _ = server_facts(url)
    assert (database, listen) == ("pgflow", "")
    assert (pgdata / "PG_VERSION").exists()
    assert (project / ".pgflow" / ".gitignore").read_text().endswith("*\n")
    assert embedded.is_running(pgdata)


def test_a_second_start_reuses_the_running_server(project: Path) -> None:
    pgdata = embedded.data_dir(project)
    first = server_facts(embedded.start_embedded(pgdata))
    second = server_facts(embedded.start_embedded(pgdata))
    assert first == second


def test_stop_then_start_again_in_the_same_process(project: Path) -> None:
    pgdata = embedded.data_dir(project)
    before = server_facts(embedded.start_embedded(pgdata))
    assert embedded.stop_embedded(pgdata) is True
    assert not embedded.is_running(pgdata)
    assert embedded.stop_embedded(pgdata) is False
    after = server_facts(embedded.start_embedded(pgdata))
    assert after[:2] == before[:2] and after[2] != before[2]


def test_stop_without_a_data_dir_is_a_no_op(project: Path) -> None:
    assert embedded.stop_embedded(project / "nothing" / "pgdata") is False


def test_defaults_to_the_current_project(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (project / "src").mkdir(exist_ok=True)
    monkeypatch.chdir(project / "src")  # the project is found upward, via pyproject.toml
    url = embedded.start_embedded()
    assert embedded.is_running()
    assert server_facts(url) == server_facts(embedded.start_embedded(embedded.data_dir(project)))


def test_resolution_falls_back_to_the_embedded_server(project: Path) -> None:
    target = resolve_database(None, environ={}, cwd=project)
    assert target.source == "embedded" and target.origin == project.resolve() / ".pgflow"
    assert target.describe(cwd=project).startswith("Using embedded Postgres in ./.pgflow ")
    assert server_facts(target.url)[0] == "pgflow"


def test_a_data_dir_too_long_for_a_socket_still_works() -> None:
    with temporary_project() as root:
        deep = root / ("d" * 60) / ("e" * 60)
        deep.mkdir(parents=True)
        pgdata = embedded.data_dir(deep)
        assert len(str(pgdata / ".s.PGSQL.5432")) > SOCKET_PATH_LIMIT
        url = embedded.start_embedded(pgdata)
        try:
            assert server_facts(url)[0] == "pgflow"
            assert str(pgdata) not in url  # the socket lives in a short runtime dir instead
        finally:
            embedded.stop_embedded(pgdata)
            socket_dir = Path(str(conninfo_to_dict(url)["host"]))
            if socket_dir.exists() and not any(socket_dir.iterdir()):
                socket_dir.rmdir()


def test_cli_install_and_stop_with_the_embedded_server(pgflow_project: Path) -> None:
    runner = CliRunner()

    first = runner.invoke(main, ["install"])
    assert first.exit_code == 0, first.output
    assert first.stderr.startswith("Using embedded Postgres in ./.pgflow (pass --database-url")
    assert f"Applied migration {migrations()[0].filename}" in first.stdout

    again = runner.invoke(main, ["install"])
    assert again.exit_code == 0, again.output
    assert f"already up to date (version {migrations()[-1].id})" in again.stdout

    url = runner.invoke(main, ["embedded", "url"])
    assert url.exit_code == 0 and server_facts(url.stdout.strip())[0] == "pgflow"

    stop = runner.invoke(main, ["embedded", "stop"])
    assert (stop.exit_code, stop.stdout) == (0, "Stopped the embedded Postgres in ./.pgflow\n")
    stop_again = runner.invoke(main, ["embedded", "stop"])
    assert stop_again.stdout == "The embedded Postgres in ./.pgflow is not running\n"
