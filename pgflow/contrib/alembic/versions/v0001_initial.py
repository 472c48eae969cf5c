"""pgflow schema 0001: initial

Revision ID: pgflow_0001
Revises:
Create Date: 2026-11-23 00:00:00

Applies pgflow/migrations/0001_initial.sql (read from the installed package at upgrade
time) and records it in pgflow.schema_migrations, as `pgflow install` does: a database
installed either way is recognised by the other. Downgrading this base revision drops the
pgflow schema, with every flow and run in it.
"""

from __future__ import annotations

from alembic import op

import pgflow.contrib.alembic.ops  # noqa: F401 - registers op.pgflow_*

revision = "pgflow_0001"
down_revision = None
branch_labels = ("pgflow",)
depends_on = None


def upgrade() -> None:
    """Install pgflow schema migration 0001."""
    op.pgflow_install(1)  # type: ignore[attr-defined]


def downgrade() -> None:
    """Drop schema pgflow."""
    op.pgflow_uninstall()  # type: ignore[attr-defined]
