"""Where a Worker process spends its CPU: py-spy samples, summarised by package and function.

py-spy (``pip install -e '.[bench]'``) attaches to a crew member and samples it without
pausing it (``--nonblocking``); idle samples (waiting on a socket, the event loop's
selector or a queue) are left out, so the shares are shares of the process's busy time.
"""

from __future__ import annotations

import logging
import re
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

__all__ = ["py_spy", "sampling", "summarize"]

logger = logging.getLogger(__name__)

# leaf frames that mean "waiting", which py-spy may still count as busy
_WAITING = ("(selectors.py)", "(multiprocessing/connection.py)", "wait (threading.py)")
_FRAME = re.compile(r"^(?P<function>.*) \((?P<path>.*?)(?::\d+)?\)$")


def py_spy() -> str | None:
    """The py-spy executable (next to this Python first), or None."""
    local = Path(sys.executable).parent / "py-spy"
    return str(local) if local.exists() else shutil.which("py-spy")


@contextmanager
def sampling(pid: int, out: Path, rate: int = 250) -> Iterator[Path | None]:
    """Sample process ``pid`` while the block runs; yields the raw output path (or None)."""
    exe = py_spy()
    if exe is None:
        yield None
        return
    command = [exe, "record", "--pid", str(pid), "--rate", str(rate), "--format", "raw",
               "--output", str(out), "--nonblocking"]  # fmt: skip
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    time.sleep(0.5)  # let it attach
    try:
        yield out
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            _, err = proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            err = "timed out"
        if proc.returncode not in (0, -signal.SIGINT) and not out.exists():
            logger.warning("py-spy failed (%s): %s", proc.returncode, err.strip()[-300:])


def summarize(raw: Path, top: int = 12) -> dict[str, Any]:
    """Busy samples by package (self time) and the top functions (self and inclusive)."""
    if not raw.exists():
        return {}
    self_time: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    packages: Counter[str] = Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_name(frame) for frame in stack.split(";")]
        if frames[-1].endswith(_WAITING):
            continue
        total += count
        self_time[frames[-1]] += count
        packages[_package(frames[-1])] += count
        for frame in set(frames):
            inclusive[frame] += count
    return {
        "samples": total,
        "packages": packages.most_common(),
        "self": self_time.most_common(top),
        "inclusive": [(f, n) for f, n in inclusive.most_common(top * 4) if _ours(f)][:top],
    }


def _name(frame: str) -> str:
    match = _FRAME.match(frame.strip())
    if match is None:
        return frame.strip()
    return f"{match['function']} ({_short_path(match['path'])})"


def _short_path(path: str) -> str:
    for marker in ("site-packages/", "/work/main/", "/lib/python3"):
        if marker in path:
            tail = path.split(marker, 1)[1]
            return tail.split("/", 1)[1] if marker == "/lib/python3" else tail
    return path


def _package(frame: str) -> str:
    match = re.search(r"\(([^/)]+)", frame)
    if match is None:
        return "other"
    head = match.group(1)
    return head.removesuffix(".py") if head else "other"


def _ours(frame: str) -> bool:
    return "(pgflow/" in frame or "(psycopg" in frame
