"""Fixtures of the fault-injection suite; every test here carries the ``faults`` marker.

Tests that restart or stop Postgres use ``private_pg``: an embedded server of their own,
so the session's shared server never goes down under other tests. The figures of each
load (tasks, executions, workers killed, restarts, lost, duplicates) are printed in the
terminal summary.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.faults.audit import Figures
from tests.private_postgres import PrivateServer, private_server

FIGURES: list[tuple[str, Figures]] = []
HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in Path(str(item.fspath)).resolve().parents:
            item.add_marker(pytest.mark.faults)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not FIGURES:
        return
    terminalreporter.section("pgflow fault-injection figures")
    for name, figures in FIGURES:
        text = ", ".join(f"{k}={v}" for k, v in figures.as_dict().items())
        terminalreporter.write_line(f"{name}: {text}")


@pytest.fixture(scope="session")
def private_pg() -> Iterator[PrivateServer]:
    """A private embedded Postgres that tests may restart (stopped after the session)."""
    with private_server() as server:
        yield server


@pytest.fixture
def fault_db(private_pg: PrivateServer) -> str:
    """A fresh database with the pgflow schema on the private server."""
    return private_pg.create_database()


@pytest.fixture
def logs(tmp_path: Path) -> Path:
    """A folder for worker logs (kept by pytest for a look after a failure)."""
    return tmp_path


@pytest.fixture
def figures(request: pytest.FixtureRequest) -> Figures:
    """Figures of this test's load, printed in the terminal summary."""
    result = Figures()
    FIGURES.append((request.node.name, result))
    return result
