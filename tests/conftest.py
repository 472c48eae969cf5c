"""Test-suite wiring: every database fixture comes from the public pytest plugin.

See :mod:`pgflow.testing` for how the server is chosen (``PGFLOW_TEST_DATABASE_URL``,
testcontainers when Docker answers, else an embedded server) and for the fixtures
``db_url``, ``conn``, ``aconn`` and ``empty_db_url``.
"""

from __future__ import annotations

pytest_plugins = ["pgflow.testing"]
