"""Schedules: cron timetables that start runs of a flow, and which of their ticks are due.

``flow.schedule("*/5 * * * *", input={...}, timezone="Europe/Paris", catch_up="latest")``
records a :class:`Schedule`; ``deploy`` and compiled SQL store it with the flow (runtime
configuration, outside the shape), and workers start each due tick once. Cron expressions
are parsed by ``cronsim`` (the five standard fields plus the usual ``L``, ``W``, ``#``
extensions); ticks are computed in the schedule's IANA time zone, so daylight-saving changes
behave like cron: a time that does not exist that day runs once at the first minute after
the gap, a time that happens twice runs once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, get_args
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError

from pgflow.dsl.options import Where
from pgflow.dsl.slugs import slug_problem

__all__ = ["ON_TIME", "CatchUp", "Schedule", "check_schedule", "due_ticks"]

CatchUp = Literal["latest", "all", "none"]
ON_TIME = timedelta(seconds=60)
"""With ``catch_up="none"``, a tick is started only when it is at most this late."""
_MAX_CATCH_UP = 1000


@dataclass(frozen=True, slots=True)
class Schedule:
    """One schedule of a flow.

    Attributes:
        name: unique within the flow (``"default"`` unless given).
        cron: the five-field cron expression.
        timezone: the IANA time zone the expression is read in.
        input: the run input each tick starts with (JSON-compatible, already validated).
        catch_up: after downtime, start the ``latest`` missed tick only, ``all`` of them
            (oldest first, at most 1000 per pass), or ``none`` (only ticks at most
            :data:`ON_TIME` late).
    """

    name: str
    cron: str
    timezone: str
    input: Any
    catch_up: CatchUp

    def to_json(self) -> dict[str, Any]:
        """The entry ``pgflow.set_schedules`` stores."""
        return {
            "name": self.name,
            "cron": self.cron,
            "timezone": self.timezone,
            "input": self.input,
            "catch_up": self.catch_up,
        }


def check_schedule(
    where: Where, cron: object, *, name: object, timezone: object, catch_up: object, input: Any
) -> Schedule:
    """Validate a schedule's settings (``input`` is already validated and dumped).

    Raises:
        DefinitionError: naming the setting that is wrong and what a good one looks like.
    """
    if not isinstance(cron, str) or not cron.strip():
        raise where.error(f"schedule cron must be a non-empty string, got {cron!r}", _CRON_HINT)
    try:
        CronSim(cron, datetime(2000, 1, 1, tzinfo=UTC))
    except (CronSimError, ValueError) as exc:
        raise where.error(f"invalid cron expression {cron!r}: {exc}", _CRON_HINT) from exc
    problem = slug_problem(name)
    if problem is not None:
        raise where.error(f"invalid schedule name {name!r}: it {problem}", "e.g. name='nightly'")
    if not isinstance(timezone, str) or not _is_zone(timezone):
        raise where.error(
            f"unknown time zone {timezone!r}", "use an IANA name such as 'UTC' or 'Europe/Paris'"
        )
    if catch_up not in get_args(CatchUp):
        raise where.error(
            f"catch_up must be 'latest', 'all' or 'none', got {catch_up!r}",
            "'latest' starts only the newest missed tick after downtime",
        )
    return Schedule(str(name), cron.strip(), timezone, input, catch_up)  # type: ignore[arg-type]


_CRON_HINT = "five fields: minute hour day-of-month month day-of-week, e.g. '*/5 * * * *'"


def _is_zone(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def due_ticks(
    cron: str, timezone: str, catch_up: CatchUp, since: datetime, now: datetime
) -> tuple[list[datetime], datetime | None]:
    """The ticks to start now, and the tick to record as passed without a run.

    Args:
        cron: the expression.
        timezone: the IANA zone it is read in.
        catch_up: the schedule's policy.
        since: ticks after this instant are due (the last tick, else the creation time).
        now: the database's current time.

    Returns:
        ``(start, skip)``: the ticks to start, oldest first; and for ``none``, a late tick to
        mark as passed (so it is not looked at again), else None.
    """
    zone = ZoneInfo(timezone)
    if catch_up == "all":
        ticks: list[datetime] = []
        for tick in CronSim(cron, since.astimezone(zone).replace(second=0, microsecond=0)):
            if tick > now or len(ticks) >= _MAX_CATCH_UP:
                break
            if tick > since:
                ticks.append(tick)
        return ticks, None
    # the newest tick at or before now, found backwards: O(1) after any downtime
    after_now = now.astimezone(zone).replace(microsecond=0) + timedelta(seconds=1)
    latest = next(iter(CronSim(cron, after_now, reverse=True)), None)
    if latest is None or latest <= since:
        return [], None
    if catch_up == "none" and now - latest > ON_TIME:
        return [], latest
    return [latest], None


def next_tick(cron: str, timezone: str, after: datetime) -> datetime:
    """The first tick after ``after`` (for listings)."""
    zone = ZoneInfo(timezone)
    start = after.astimezone(zone).replace(second=0, microsecond=0)
    return next(t for t in CronSim(cron, start) if t > after)
