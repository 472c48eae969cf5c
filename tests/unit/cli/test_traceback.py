"""Stored tracebacks as `pgflow status` shows them: the user's frames, library frames counted."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

from pgflow.cli._traceback import raised_at, trim_traceback
from pgflow.worker.runner import task_error

PGFLOW_DIR = Path(__file__).resolve().parents[3] / "pgflow"
USER_CODE = """\
def inner(depth):
    if depth == 0:
        raise RuntimeError("the disk is full")
    return inner(depth - 1)


def handler(depth):
    try:
        return inner(depth)
    except RuntimeError as exc:
        raise ValueError("could not save") from exc
"""


@pytest.fixture
def user_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "user_flows.py"
    path.write_text(USER_CODE)
    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop("user_flows", None)
    return path


def stored_traceback(depth: int) -> str:
    """What a worker stores for a sync handler that failed in a thread of the event loop."""
    import user_flows  # type: ignore[import-not-found]

    async def call() -> str:
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(None, user_flows.handler, depth)
        except ValueError as exc:
            trace = task_error(exc).traceback
            assert trace is not None
            return trace
        raise AssertionError("the handler did not fail")

    return asyncio.run(call())


def test_user_frames_are_kept_and_library_frames_counted(user_module: Path) -> None:
    stored = stored_traceback(depth=1)
    assert "concurrent/futures/thread.py" in stored  # the worker's own frames are stored
    shown = trim_traceback(stored)
    text = "\n".join(shown)
    assert f'File "{user_module}", line 11, in handler' in text
    assert f'File "{user_module}", line 3, in inner' in text
    assert 'raise RuntimeError("the disk is full")' in text
    assert "thread.py" not in text
    assert any(line.startswith("  [… 1 frame in concurrent]") for line in shown), text
    # chained exceptions keep their order and sentences
    assert (
        text.index("RuntimeError: the disk is full")
        < text.index("The above exception was the direct cause")
        < text.index("ValueError: could not save")
    )
    assert shown[-1] == "ValueError: could not save"


def test_raised_at_names_the_innermost_user_frame_of_the_last_exception(
    user_module: Path,
) -> None:
    assert raised_at(stored_traceback(depth=1)) == f"{user_module}:11 in handler"
    assert raised_at("ValueError: no traceback") is None


def test_a_deep_user_stack_keeps_its_first_and_last_frames() -> None:
    frames = [f'  File "/app/flows.py", line {n}, in f{n}\n    f{n + 1}()\n' for n in range(40)]
    text = "Traceback (most recent call last):\n" + "".join(frames) + "RecursionError: deep\n"
    shown = trim_traceback(text)
    assert '  File "/app/flows.py", line 0, in f0' in shown
    assert '  File "/app/flows.py", line 39, in f39' in shown
    assert "  [… 25 more frames]" in shown
    assert '  File "/app/flows.py", line 20, in f20' not in shown
    assert shown[-1] == "RecursionError: deep"


def test_library_frames_are_named_by_package() -> None:
    text = (
        "Traceback (most recent call last):\n"
        f'  File "{PGFLOW_DIR}/worker/runner.py", line 1, in run\n    await x\n'
        '  File "/usr/lib/python3.12/asyncio/tasks.py", line 2, in wait\n    y\n'
        '  File "/srv/.venv/lib/python3.12/site-packages/httpx/_client.py", line 3, in get\n'
        "    z\n"
        '  File "<frozen importlib._bootstrap>", line 4, in _load\n'
        "KeyError: 'x'\n"
    )
    shown = trim_traceback(text)
    # no user frame at all: the innermost frame is shown so there is something to read
    assert shown[1] == "  [… 3 frames in asyncio, httpx, pgflow]"
    assert shown[2] == '  File "<frozen importlib._bootstrap>", line 4, in _load'
    assert shown[-1] == "KeyError: 'x'"


def test_a_project_folder_named_pgflow_is_user_code() -> None:
    text = (
        "Traceback (most recent call last):\n"
        '  File "/home/me/pgflow/my_flows.py", line 7, in step\n    boom()\n'
        "OSError: nope\n"
    )
    assert trim_traceback(text) == text.rstrip("\n").splitlines()


def test_text_that_is_not_a_traceback_is_shown_unchanged() -> None:
    stored = "[... 12 characters cut ...]\nsomething else"
    assert trim_traceback(stored) == ["[... 12 characters cut ...]", "something else"]
