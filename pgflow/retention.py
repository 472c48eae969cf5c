"""Pruning finished runs in short transactions: what ``pgflow prune`` runs.

:func:`prune_runs` first drops the months of history whose every run qualifies
(``pgflow.drop_history_partitions``: a month goes in one step, whatever its size), then
calls ``pgflow.prune_batch`` until a batch comes back short, each batch its own
transaction, so pruning a million runs never holds one long transaction (or its locks)
open. Live runs are never touched. Workers apply each flow's ``retention`` on their
own (``pgflow.apply_retention``, see :mod:`pgflow.worker.retention`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import psycopg
from psycopg.pq import TransactionStatus
from psycopg.rows import dict_row

from pgflow.db.errors import wrap_db_errors
from pgflow.errors import ConfigurationError, InvalidInputError
from pgflow.sql import query

__all__ = ["FINISHED_STATUSES", "PruneResult", "check_statuses", "prune_runs"]

FINISHED_STATUSES = ("completed", "failed", "cancelled")


@dataclass
class PruneResult:
    """What :func:`prune_runs` deleted.

    Attributes:
        counts: runs deleted per ``(flow_slug, status)``.
        batches: how many transactions it took.
        months: the months of history dropped whole (``"2026-09"``), oldest first.
    """

    counts: dict[tuple[str, str], int] = field(default_factory=dict)
    batches: int = 0
    months: list[str] = field(default_factory=list)

    def add(self, rows: Sequence[dict[str, Any]]) -> None:
        """Count rows of ``(flow, status, runs)``."""
        for row in rows:
            key = (row["flow"], row["status"])
            self.counts[key] = self.counts.get(key, 0) + row["runs"]

    @property
    def total(self) -> int:
        """Runs deleted in all."""
        return sum(self.counts.values())


def check_statuses(statuses: Sequence[str] | None) -> list[str] | None:
    """Validate the statuses to prune (None: every finished status).

    Raises:
        InvalidInputError: an unknown status, or ``started`` (live runs are never pruned).
    """
    if statuses is None:
        return None
    for status in statuses:
        if status not in FINISHED_STATUSES:
            why = "live runs are never pruned" if status == "started" else "unknown status"
            raise InvalidInputError(
                f"cannot prune runs with status {status!r}: {why}",
                hint=f"name finished statuses only: {','.join(FINISHED_STATUSES)}",
            )
    return list(statuses)


def prune_runs(
    conn: psycopg.Connection[Any],
    older_than: timedelta,
    *,
    flow_slug: str | None = None,
    statuses: Sequence[str] | None = None,
    batch_size: int = 1000,
    on_batch: Callable[[PruneResult], None] | None = None,
) -> PruneResult:
    """Delete finished runs that finished more than ``older_than`` ago, batch by batch.

    Without ``flow_slug`` and ``statuses``, whole months whose every run finished before
    ``older_than`` are dropped first (see ``pgflow.drop_history_partitions``).

    Args:
        conn: an autocommit connection (each batch commits on its own).
        older_than: the age past which finished runs go.
        flow_slug: only runs of this flow (None: every flow).
        statuses: only runs in these finished statuses (None: completed, failed, cancelled).
        batch_size: runs per transaction.
        on_batch: called with the running totals after each batch.

    Returns:
        What was deleted, per flow and status.

    Raises:
        InvalidInputError: a status that is not a finished one, or a batch size below 1.
        ConfigurationError: ``conn`` is inside a transaction (the batches would add up to one).
    """
    if conn.info.transaction_status != TransactionStatus.IDLE:
        raise ConfigurationError(
            "prune_runs needs a connection outside a transaction: each batch commits on its own",
            hint="pass an autocommit connection (pgflow.db.connection.connect opens one)",
        )
    params = {
        "older_than": older_than,
        "flow_slug": flow_slug,
        "statuses": check_statuses(statuses),
        "max_runs": batch_size,
    }
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise InvalidInputError(f"batch_size must be at least 1, got {batch_size!r}")
    result = PruneResult()
    with wrap_db_errors():
        if flow_slug is None and statuses is None:
            with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
                dropped = cur.execute(query("drop_history_partitions"), params).fetchall()
            result.add(dropped)
            result.months = sorted({row["month"] for row in dropped})
        while True:
            with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
                rows = cur.execute(query("prune_batch"), params).fetchall()
            result.batches += 1
            result.add(rows)
            if on_batch is not None:
                on_batch(result)
            if sum(row["runs"] for row in rows) < batch_size:
                return result
