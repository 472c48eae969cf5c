"""Test-suite wiring: every database fixture comes from the public pytest plugin.

See :mod:`pgflow.testing` for how the server is chosen (``PGFLOW_TEST_DATABASE_URL``,
testcontainers when Docker answers, else an embedded server) and for the fixtures
``db_url``, ``conn``, ``aconn`` and ``empty_db_url``.

Test databases are installed from ``pgflow/migrations/``. The unreleased migration is
generated from ``pgflow/sql/upgrades/`` and ``pgflow/sql/schema/`` by
``scripts/build-migrations``; the suite never rewrites it (``scripts/test`` runs the script
with ``--check`` first, and ``tests/migration`` fails on a stale or edited migration).
"""

from __future__ import annotations

pytest_plugins = ["pgflow.testing"]
