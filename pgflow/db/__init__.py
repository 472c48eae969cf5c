"""Database plumbing: where the database is, connections, the installer, error translation.

- :mod:`pgflow.db.connection`: URL resolution (SPEC §2 order) and connection/pool helpers.
- :mod:`pgflow.db.embedded`: the embedded Postgres used when no URL is configured.
- :mod:`pgflow.db.errors`: ``wrap_db_errors()``, the one place psycopg errors are translated.
- :mod:`pgflow.db.schema`: installs and upgrades the schema from ``pgflow/migrations``.
"""

from __future__ import annotations
