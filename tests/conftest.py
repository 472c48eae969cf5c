"""Test-suite wiring: every database fixture comes from the public pytest plugin.

See :mod:`pgflow.testing` for how the server is chosen (``PGFLOW_TEST_DATABASE_URL``,
testcontainers when Docker answers, else an embedded server) and for the fixtures
``db_url``, ``conn``, ``aconn`` and ``empty_db_url``.

Test databases are installed from ``pgflow/migrations/``. Before the first release,
``0001_initial.sql`` is derived from ``pgflow/sql/schema/``, so a local run regenerates it
first when a schema file changed (and says so). Under CI (``CI`` set) nothing is rewritten:
a stale 0001 then fails ``tests/migration`` loudly instead.
"""

from __future__ import annotations

import os
import runpy
from pathlib import Path

import pytest

pytest_plugins = ["pgflow.testing"]

BUILD_SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "build-initial-migration"


def pytest_sessionstart(session: pytest.Session) -> None:
    """Regenerate the pre-release 0001 migration when the schema files changed."""
    if os.environ.get("CI") or not BUILD_SCRIPT.exists():
        return
    script = runpy.run_path(str(BUILD_SCRIPT), run_name="build_initial_migration")
    if script["RELEASED_MARKER"].exists():
        return
    rebuilt = script["rebuild"](check=False)
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    for path in rebuilt:
        if reporter is not None:
            reporter.write_line(f"pgflow: regenerated {path.relative_to(BUILD_SCRIPT.parents[1])}")
