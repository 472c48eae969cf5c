"""The ``pgflow`` command line: a thin layer over library calls.

Each sub-module adds its commands to :data:`main`; importing them here registers them.
User errors (:class:`pgflow.errors.PgflowError`) exit with code 1 and a hint, never a
traceback; usage errors exit with code 2 (click's convention).
"""

from __future__ import annotations

from pgflow.cli import (
    alembic,
    catalog,
    deploy,
    flows,
    operate,
    runs,
    schedules,
    schema,
    shards,
    telemetry,
    ui,
    worker,
)
from pgflow.cli._group import main

__all__ = [
    "alembic",
    "catalog",
    "deploy",
    "flows",
    "main",
    "operate",
    "runs",
    "schedules",
    "schema",
    "shards",
    "telemetry",
    "ui",
    "worker",
]
