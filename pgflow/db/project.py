"""The project a command runs in: the folder of the nearest ``pyproject.toml``."""

from __future__ import annotations

from pathlib import Path

__all__ = ["find_pyproject", "project_dir"]


def find_pyproject(start: Path | None = None) -> Path | None:
    """Return the nearest ``pyproject.toml`` at or above ``start`` (default: cwd)."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        candidate = folder / "pyproject.toml"
        if candidate.is_file():
            return candidate
    return None


def project_dir(start: Path | None = None) -> Path:
    """The project root: the folder of the nearest ``pyproject.toml``, else ``start``/cwd."""
    pyproject = find_pyproject(start)
    return pyproject.parent if pyproject else (start or Path.cwd()).resolve()
