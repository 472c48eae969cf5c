"""pgflow schema 0008: completion

Revision ID: pgflow_0008
Revises: pgflow_0007
Create Date: 2026-11-29 00:00:00

Applies pgflow/migrations/0008_completion.sql (read from the installed package at upgrade
time) and records it in pgflow.schema_migrations, as `pgflow install` does: a database
upgraded either way is recognised by the other. Runs in flight are kept and finish under
the new schema.

Downgrading is refused, with a message saying what to do instead. pgflow's schema
migrations only go forward (like Django's irreversible operations or Rails'
IrreversibleMigration): 0008 changes tables and functions and replaces functions in place,
and there is no script that would restore the 0007 definitions. The two other
choices surprise a user more: a silent no-op would record pgflow_0007 over a 0008 schema
(an older pgflow-py would then refuse it as "newer than this package"), and dropping the
schema would delete every flow and run when "one revision back" was asked for. The whole
command stops before changing anything (Alembic runs it in one transaction on Postgres).
"""

from __future__ import annotations

from alembic import op
from alembic.util import CommandError

import pgflow.contrib.alembic.ops  # noqa: F401 - registers op.pgflow_*

revision = "pgflow_0008"
down_revision = "pgflow_0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Install pgflow schema migration 0008."""
    op.pgflow_install(8)  # type: ignore[attr-defined]


def downgrade() -> None:
    """Refuse: pgflow schema migrations cannot be undone."""
    raise CommandError(
        "pgflow schema migration 0008_completion cannot be undone: pgflow's schema migrations "
        "only go forward. To return to an older pgflow-py, restore a backup taken before the "
        "upgrade. To remove pgflow with every flow and run instead, downgrade your own "
        "revisions that depend on it, then run `alembic stamp pgflow_0001` and "
        "`alembic downgrade pgflow@base`."
    )
