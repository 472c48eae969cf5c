"""Database plumbing: where the database is, connections, the installer, error translation.

- :mod:`pgflow.db.target`: which database a command uses (URL resolution) and why.
- :mod:`pgflow.db.project`: the project folder (nearest ``pyproject.toml``).
- :mod:`pgflow.db.connection`: autocommit connections and pools.
- :mod:`pgflow.db.embedded`: the embedded Postgres used when no URL is configured.
- :mod:`pgflow.db.errors`: ``wrap_db_errors()``, the one place psycopg errors are translated.
- :mod:`pgflow.db.retry`: which database errors are transient, backoff, outage logging.
- :mod:`pgflow.db.schema`: installs and upgrades the schema from ``pgflow/migrations``.
"""

from __future__ import annotations
