"""Every SQL call of the run viewer: named, read-only queries over a shared pool.

The queries live in ``pgflow/ui/queries.sql`` and need only the ``pgflow_reader`` role.
Values are capped in SQL (:data:`VALUE_CAP` bytes) and decoded one cell at a time by
:func:`pgflow._decode.decode_for_reading`, so a huge or undecodable value never reaches or
breaks a page. Database errors come out as :class:`pgflow.errors.PgflowError`.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from importlib.resources import files
from typing import Any, Final, LiteralString

from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from pgflow._decode import decode_for_reading
from pgflow.db.errors import wrap_db_errors
from pgflow.sql import parse_queries

__all__ = ["ERRORS_SHOWN", "VALUE_CAP", "RunData", "RunFilter", "Store", "ui_query"]

VALUE_CAP: Final = 256 * 1024  # bytes of one input or output fetched for a preview
ERRORS_SHOWN: Final = 50  # task errors listed on a run page
TRACEBACK_CHARS: Final = 20_000
MESSAGE_CHARS: Final = 2_000
POOL_TIMEOUT: Final = 3.0  # seconds a page waits for a connection before it says so


@cache
def _queries() -> dict[str, LiteralString]:
    text = (files("pgflow.ui") / "queries.sql").read_text(encoding="utf-8")
    return parse_queries(text, source="pgflow/ui/queries.sql")


def ui_query(name: str) -> LiteralString:
    """The SQL of one named query of ``pgflow/ui/queries.sql``."""
    return _queries()[name]


@dataclass(frozen=True, slots=True)
class RunFilter:
    """The filters of the runs page (None: any)."""

    flow_slug: str | None = None
    status: str | None = None
    since: datetime | timedelta | None = None
    before: datetime | None = None
    limit: int = 50

    def params(self) -> dict[str, Any]:
        """The ``ui_runs`` query parameters."""
        since_at = self.since if isinstance(self.since, datetime) else None
        since_ago = self.since if isinstance(self.since, timedelta) else None
        return {
            "flow_slug": self.flow_slug,
            "status": self.status,
            "since_at": since_at,
            "since_ago": since_ago,
            "before": self.before,
            "limit": self.limit,
        }


@dataclass(frozen=True, slots=True)
class RunData:
    """What a run page shows, as rows: the run, its steps and its task errors."""

    run: dict[str, Any]
    steps: list[dict[str, Any]]
    errors: list[dict[str, Any]]


class Store:
    """The viewer's reads over one async pool of autocommit connections."""

    def __init__(self, pool: AsyncConnectionPool, conninfo: str) -> None:
        self._pool = pool
        self._conninfo = conninfo

    async def _rows(self, name: str, **params: Any) -> list[dict[str, Any]]:
        async with (
            wrap_db_errors(conninfo=self._conninfo),
            self._pool.connection(timeout=POOL_TIMEOUT) as conn,
            conn.cursor(row_factory=dict_row) as cur,
        ):
            decode_for_reading(cur)
            await cur.execute(ui_query(name), params)
            return await cur.fetchall()

    async def flows(self) -> list[dict[str, Any]]:
        """Deployed flows with run counts by status, each with its ``steps``."""
        flows = await self._rows("ui_flows")
        steps = await self.flow_steps(None)
        for flow in flows:
            flow["steps"] = [s for s in steps if s["flow_slug"] == flow["flow_slug"]]
        return flows

    async def flow_steps(self, flow_slug: str | None) -> list[dict[str, Any]]:
        """The steps of one flow (None: of every flow) with their dependencies."""
        return await self._rows("ui_flow_steps", flow_slug=flow_slug)

    async def flow_slugs(self) -> list[str]:
        """The slugs of the deployed flows, sorted."""
        return [row["flow_slug"] for row in await self._rows("ui_flow_slugs")]

    async def runs(self, run_filter: RunFilter) -> list[dict[str, Any]]:
        """Runs newest first, as the filter says."""
        return await self._rows("ui_runs", **run_filter.params())

    async def run(self, run_id: uuid.UUID) -> RunData | None:
        """A run with its steps and task errors; None when there is no such run."""
        found = await self._rows("ui_run", run_id=run_id, cap=VALUE_CAP)
        if not found:
            return None
        steps = await self._rows("ui_run_steps", run_id=run_id, cap=VALUE_CAP)
        errors = await self._rows(
            "ui_run_errors",
            run_id=run_id,
            limit=ERRORS_SHOWN,
            traceback_chars=TRACEBACK_CHARS,
            message_chars=MESSAGE_CHARS,
        )
        return RunData(found[0], steps, errors)
