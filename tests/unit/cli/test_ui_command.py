"""``pgflow ui`` refuses unsafe or impossible starts with one line and a hint, exit 1."""

from __future__ import annotations

import subprocess
import sys

import pytest
from click.testing import CliRunner

from pgflow.cli import main


def test_any_other_bind_than_localhost_needs_a_token() -> None:
    result = CliRunner().invoke(
        main, ["ui", "--host", "0.0.0.0", "--database-url", "postgresql://x@h/db"]
    )
    assert result.exit_code == 1
    assert "Error: pgflow ui refuses to listen on 0.0.0.0 without --token" in result.stderr
    assert "Hint: pass a long random token" in result.stderr
    assert "Traceback" not in result.output


def test_a_short_token_is_refused() -> None:
    result = CliRunner().invoke(
        main, ["ui", "--token", "abc", "--database-url", "postgresql://x@h/db"]
    )
    assert result.exit_code == 1
    assert "the --token is too short (3 characters" in result.stderr


def test_the_token_can_come_from_the_environment() -> None:
    result = CliRunner().invoke(
        main,
        ["ui", "--host", "0.0.0.0", "--database-url", "postgresql://x@h/db"],
        env={"PGFLOW_UI_TOKEN": "abc"},
    )
    assert result.exit_code == 1 and "too short" in result.stderr  # read, then checked


def test_without_the_extra_the_command_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in [
        m for m in sys.modules if m == "starlette" or m.startswith(("starlette.", "pgflow.ui"))
    ]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "starlette", None)  # as if the ui extra were not installed
    result = CliRunner().invoke(main, ["ui"])
    assert result.exit_code == 1
    assert "Error: pgflow ui needs the ui extra (cannot import starlette)" in result.stderr
    assert "Hint: install the extra: pip install 'pgflow-py[ui]'" in result.stderr


def test_the_command_line_and_the_package_never_import_the_viewer() -> None:
    code = (
        "import sys, pgflow, pgflow.cli; "
        "viewer = ('pgflow.ui', 'starlette', 'uvicorn', 'jinja2'); "
        "print([m for m in sys.modules if m.startswith(viewer)])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
