"""docs/testing.md, copied into an empty project, passes: every code block runs there.

Each ```python block of the page names its file on its first line (``# flows.py``); blocks
naming the same file are appended in order. The project is run by a separate pytest, as a
user would run it, against this session's Postgres server. It runs again without
pytest-asyncio, to show that the plugin and every sync test work without it.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from pgflow.testing import DatabaseServer

DOC = Path(__file__).resolve().parents[3] / "docs" / "testing.md"
BLOCK = re.compile(r"^```python\n(.*?)^```", re.MULTILINE | re.DOTALL)
FILE_LINE = re.compile(r"^# (?P<name>[\w/]+\.py)\n")
# pytest-asyncio disabled: a sync test of the page, whose async test's marker is then unknown
WITHOUT_ASYNCIO = ("-p", "no:asyncio", "-W", "ignore::pytest.PytestUnknownMarkWarning", "-k",
                   "retried_every_hour")  # fmt: skip


def project_files(markdown: str) -> dict[str, str]:
    """``{file name: content}`` from the page's python blocks."""
    files: dict[str, str] = {}
    for block in BLOCK.findall(markdown):
        named = FILE_LINE.match(block)
        assert named, f"a python block of {DOC.name} does not name its file: {block[:60]!r}"
        files[named["name"]] = files.get(named["name"], "") + block + "\n\n"
    return files


class ProjectRun:
    """A pytest run of the project in a subprocess; both runs of this module go at once."""

    def __init__(self, project: Path, server: DatabaseServer, *args: str) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "PGFLOW_"))}
        env["PGFLOW_TEST_DATABASE_URL"] = server.admin_url
        self.process = subprocess.Popen(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir",
             str(project), "-W", "error", "-W", "ignore::pytest.PytestDeprecationWarning", *args],
            cwd=project, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip

    def result(self) -> tuple[int, str]:
        """Wait for the run; its exit code and output."""
        output, _ = self.process.communicate(timeout=300)
        return self.process.returncode, output


@pytest.fixture(scope="module")
def project_runs(
    tmp_path_factory: pytest.TempPathFactory, pgflow_server: DatabaseServer
) -> Iterator[dict[str, ProjectRun]]:
    """The copied project, run as is and without pytest-asyncio, in parallel."""
    project = tmp_path_factory.mktemp("project")
    for name, content in project_files(DOC.read_text(encoding="utf-8")).items():
        (project / name).write_text(content, encoding="utf-8")
    runs = {
        "as is": ProjectRun(project, pgflow_server),
        "no asyncio": ProjectRun(project, pgflow_server, *WITHOUT_ASYNCIO),
    }
    yield runs
    for run in runs.values():
        if run.process.poll() is None:
            run.process.kill()
            run.process.wait()


def test_the_page_holds_the_whole_project() -> None:
    files = project_files(DOC.read_text(encoding="utf-8"))
    assert sorted(files) == ["conftest.py", "flows.py", "test_analyze_website.py"]
    assert 'pytest_plugins = ["pgflow.testing"]' in files["conftest.py"]
    tests = re.findall(r"^(?:async )?def test_", files["test_analyze_website.py"], re.MULTILINE)
    assert len(tests) >= 8


def test_the_documented_tests_pass_in_an_empty_project(
    project_runs: dict[str, ProjectRun],
) -> None:
    code, output = project_runs["as is"].result()
    assert code == 0, output
    source = project_files(DOC.read_text(encoding="utf-8"))["test_analyze_website.py"]
    tests = len(re.findall(r"^(?:async )?def test_", source, re.MULTILINE))
    assert f"{tests} passed" in output, output


def test_the_plugin_works_without_pytest_asyncio(project_runs: dict[str, ProjectRun]) -> None:
    code, output = project_runs["no asyncio"].result()
    assert code == 0, output
    assert "1 passed" in output, output


def test_importing_pgflow_does_not_import_pytest() -> None:
    code = "import sys, pgflow, pgflow.client, pgflow.worker; print('pytest' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == "False"
