"""How pgflow.testing picks its server, checked by running a small pytest session of a user's."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from pgflow.testing import DatabaseServer

USER_CONFTEST = 'pytest_plugins = ["pgflow.testing"]\n'
USER_TESTS = """
import os


def test_kind(pgflow_server):
    assert pgflow_server.kind == os.environ["EXPECTED_KIND"]


def test_schema_is_installed(conn):
    assert conn.execute("select count(*) as n from pgflow.flows").fetchone() == {"n": 0}


async def test_async(aconn):
    cur = await aconn.execute("select 1 as one")
    assert await cur.fetchone() == {"one": 1}
"""
USER_INI = """[pytest]
asyncio_mode = auto
asyncio_default_fixture_loop_scope = function
filterwarnings = error
"""


def run_user_suite(folder: Path, **env: str) -> subprocess.CompletedProcess[str]:
    (folder / "conftest.py").write_text(USER_CONFTEST)
    (folder / "test_user.py").write_text(USER_TESTS)
    (folder / "pytest.ini").write_text(USER_INI)
    base = {k: v for k, v in os.environ.items() if not k.startswith(("PGFLOW_", "PYTEST_"))}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(folder)],
        cwd=folder,
        env={**base, **env},
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )


def test_pgflow_test_database_url_is_used_when_set(
    tmp_path: Path, pgflow_server: DatabaseServer
) -> None:
    result = run_user_suite(
        tmp_path, PGFLOW_TEST_DATABASE_URL=pgflow_server.admin_url, EXPECTED_KIND="env"
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 passed" in result.stdout


@pytest.mark.skipif(bool(os.environ.get("PGFLOW_TEST_DATABASE_URL")), reason="env server in use")
def test_without_docker_an_embedded_server_is_used(tmp_path: Path) -> None:
    result = run_user_suite(
        tmp_path, DOCKER_HOST="unix:///nonexistent/docker.sock", EXPECTED_KIND="embedded"
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 passed" in result.stdout
