"""Trim a stored traceback for ``pgflow status``: the user's frames, the library's counted.

Workers store ``traceback.format_exception`` text, which mostly shows pgflow's worker,
asyncio and thread-pool frames around the one or two frames of the handler. Here each run
of library frames (the standard library, site-packages, pgflow itself, ``<frozen …>``)
becomes one ``[… 4 frames in asyncio, pgflow]`` line; the user's frames and the exception
lines stay as stored. A very deep user stack keeps its first and last frames. Chained
exceptions ("The above exception was the direct cause …") keep their order. Text that
does not look like a Python traceback is returned unchanged.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["raised_at", "trim_traceback"]

_FRAME = re.compile(r'^  File "(?P<path>[^"]*)", line \d+, in ')
_HEADER = "Traceback (most recent call last):"
_PACKAGE_DIRS = re.compile(r"(site|dist)-packages")
_STDLIB = re.compile(r"python\d[\d.]*")  # lib/python3.12/asyncio/...
_PGFLOW_DIR = Path(__file__).resolve().parents[1]  # the installed pgflow package
_KEEP_FIRST, _KEEP_LAST = 3, 12  # user frames kept around a cut in a deep stack


@dataclass
class _Frame:
    path: str
    lines: list[str] = field(default_factory=list)

    @property
    def library(self) -> str | None:
        """The library the frame belongs to (None: the user's own code)."""
        if self.path.startswith("<frozen "):
            return self.path.removeprefix("<frozen ").rstrip(">").split(".")[0]
        parts = re.split(r"[/\\]", self.path)
        if "pgflow" in parts:
            tail = parts[len(parts) - 1 - parts[::-1].index("pgflow") + 1 :]
            if tail and (_PGFLOW_DIR.joinpath(*tail)).exists():
                return "pgflow"
        for markers in (_PACKAGE_DIRS, _STDLIB):
            found = [i for i, part in enumerate(parts[:-1]) if markers.fullmatch(part)]
            if found:
                return parts[found[-1] + 1].removesuffix(".py")
        return None


def raised_at(text: str) -> str | None:
    """``file:line in function`` of the innermost user frame of the last exception."""
    sections = _sections(text.rstrip("\n").splitlines())
    for line in reversed(sections[-1]):
        match = _FRAME.match(line)
        if match and _Frame(match["path"]).library is None:
            number, _, function = line.split(", line ", 1)[1].partition(", in ")
            return f"{match['path']}:{number} in {function}"
    return None


def trim_traceback(text: str) -> list[str]:
    """Return the lines to show for a stored traceback (see the module docstring)."""
    if _HEADER not in text:
        return text.rstrip("\n").splitlines()
    shown: list[str] = []
    for line_group in _sections(text.rstrip("\n").splitlines()):
        shown += _trim_section(line_group)
    return shown


def _sections(lines: list[str]) -> list[list[str]]:
    """Split at each ``Traceback`` header; text before the first stays with it."""
    sections: list[list[str]] = [[]]
    for line in lines:
        if line == _HEADER and any(x == _HEADER for x in sections[-1]):
            sections.append([])
        sections[-1].append(line)
    return sections


def _trim_section(lines: list[str]) -> list[str]:
    start = lines.index(_HEADER) if _HEADER in lines else len(lines)
    frames: list[_Frame] = []
    rest_at = len(lines)
    for index in range(start + 1, len(lines)):
        line = lines[index]
        match = _FRAME.match(line)
        if match:
            frames.append(_Frame(match["path"], [line]))
        elif frames and line.startswith(("    ", "  [Previous line")):
            frames[-1].lines.append(line)
        else:
            rest_at = index
            break
    return [*lines[: start + 1], *_frames(frames), *lines[rest_at:]]


def _frames(frames: list[_Frame]) -> list[str]:
    if not any(f.library is None for f in frames):
        return _summary(frames[:-1]) + [line for f in frames[-1:] for line in f.lines]
    shown: list[str] = []
    hidden: list[_Frame] = []
    for frame in _cut_deep(frames):
        if frame.library is None:
            shown += _summary(hidden)
            hidden = []
            shown += frame.lines
        else:
            hidden.append(frame)
    return shown + _summary(hidden)


def _cut_deep(frames: list[_Frame]) -> list[_Frame]:
    user = [i for i, f in enumerate(frames) if f.library is None]
    if len(user) <= _KEEP_FIRST + _KEEP_LAST:
        return frames
    first, last = user[_KEEP_FIRST - 1], user[-_KEEP_LAST]
    cut = _Frame("", [f"  [… {last - first - 1} more frames]"])
    return [*frames[: first + 1], cut, *frames[last:]]


def _summary(hidden: list[_Frame]) -> list[str]:
    if not hidden:
        return []
    names = sorted({f.library or "?" for f in hidden})
    plural = "s" if len(hidden) > 1 else ""
    return [f"  [… {len(hidden)} frame{plural} in {', '.join(names)}]"]
