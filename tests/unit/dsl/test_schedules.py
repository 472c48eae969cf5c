"""Schedule definitions and due ticks: policies, daylight-saving changes, bad settings."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from pydantic import BaseModel

from pgflow import Flow
from pgflow.compiler import compile_flow
from pgflow.dsl.schedules import due_ticks, next_tick
from pgflow.errors import DefinitionError

PARIS = ZoneInfo("Europe/Paris")
NOW = datetime(2026, 1, 1, 12, 0, 30, tzinfo=UTC)


def test_catch_up_all_starts_every_missed_tick_oldest_first() -> None:
    ticks, skipped = due_ticks("* * * * *", "UTC", "all", NOW - timedelta(minutes=5), NOW)
    assert [t.minute for t in ticks] == [56, 57, 58, 59, 0] and skipped is None


def test_catch_up_latest_starts_only_the_newest_missed_tick() -> None:
    ticks, skipped = due_ticks("* * * * *", "UTC", "latest", NOW - timedelta(days=400), NOW)
    assert ticks == [datetime(2026, 1, 1, 12, 0, tzinfo=UTC)] and skipped is None


def test_catch_up_none_passes_over_a_late_tick_and_starts_an_on_time_one() -> None:
    late, skipped = due_ticks("55 * * * *", "UTC", "none", NOW - timedelta(hours=3), NOW)
    assert late == [] and skipped == datetime(2026, 1, 1, 11, 55, tzinfo=UTC)
    on_time, skipped = due_ticks("0 * * * *", "UTC", "none", NOW - timedelta(hours=3), NOW)
    assert on_time == [datetime(2026, 1, 1, 12, 0, tzinfo=UTC)] and skipped is None


def test_nothing_is_due_before_the_next_tick() -> None:
    assert due_ticks("0 * * * *", "UTC", "all", NOW - timedelta(seconds=10), NOW) == ([], None)
    assert due_ticks("0 * * * *", "UTC", "latest", NOW, NOW) == ([], None)


def test_a_time_skipped_by_the_spring_change_runs_once_right_after_the_gap() -> None:
    since = datetime(2026, 3, 28, 12, 0, tzinfo=PARIS)
    now = datetime(2026, 3, 30, 12, 0, tzinfo=PARIS)
    ticks, _ = due_ticks("30 2 * * *", "Europe/Paris", "all", since, now)
    local = [t.astimezone(PARIS).strftime("%m-%d %H:%M %Z") for t in ticks]
    assert local == ["03-29 03:00 CEST", "03-30 02:30 CEST"]


def test_a_time_repeated_by_the_autumn_change_runs_once() -> None:
    since = datetime(2026, 10, 24, 12, 0, tzinfo=PARIS)
    now = datetime(2026, 10, 26, 12, 0, tzinfo=PARIS)
    ticks, _ = due_ticks("30 2 * * *", "Europe/Paris", "all", since, now)
    assert [t.astimezone(UTC).strftime("%m-%d %H:%M") for t in ticks] == [
        "10-25 00:30",  # 02:30 CEST, the first of the two 02:30s
        "10-26 01:30",  # 02:30 CET
    ]


def test_a_daily_schedule_in_a_zone_keeps_local_time_across_the_change() -> None:
    first = next_tick("0 9 * * *", "Europe/Paris", datetime(2026, 3, 27, 12, tzinfo=UTC))
    second = next_tick("0 9 * * *", "Europe/Paris", first)
    assert [t.astimezone(PARIS).strftime("%d %H:%M") for t in (first, second)] == [
        "28 09:00",
        "29 09:00",
    ]
    assert second.astimezone(UTC) - first.astimezone(UTC) == timedelta(hours=23)


class Report(BaseModel):
    region: str


def test_schedules_compile_after_the_steps_and_keep_validated_input() -> None:
    flow = Flow("report", input=Report).step("build", lambda input: 1)
    flow.schedule("0 6 * * 1-5", input={"region": "eu"}, timezone="Europe/Paris")
    flow.schedule("0 * * * *", input=Report(region="us"), catch_up="none", name="hourly")
    sql = compile_flow(flow).sql
    assert sql.index("pgflow.add_step") < sql.index("pgflow.set_schedules")
    assert '"cron": "0 6 * * 1-5"' in sql and '"input": {"region": "us"}' in sql
    assert [s.name for s in flow.schedules] == ["default", "hourly"]


def test_a_flow_without_schedules_compiles_as_before() -> None:
    assert "set_schedules" not in compile_flow(Flow("plain").step("a", lambda: 1)).sql


@pytest.mark.parametrize(
    ("kwargs", "problem"),
    [
        ({"cron": "61 * * * *"}, "invalid cron expression '61 * * * *'"),
        ({"cron": "every minute"}, "invalid cron expression"),
        ({"cron": ""}, "non-empty string"),
        ({"timezone": "Mars/Olympus"}, "unknown time zone 'Mars/Olympus'"),
        ({"catch_up": "some"}, "catch_up must be 'latest', 'all' or 'none'"),
        ({"name": "no-dashes"}, "invalid schedule name 'no-dashes'"),
        ({"input": {"region": 5}}, "invalid schedule input"),
    ],
)
def test_bad_schedule_settings_are_refused_at_definition(
    kwargs: dict[str, object], problem: str
) -> None:
    flow = Flow("report", input=Report).step("build", lambda input: 1)
    settings: dict[str, object] = {"cron": "* * * * *", "input": {"region": "eu"}, **kwargs}
    cron = settings.pop("cron")
    with pytest.raises(DefinitionError) as refused:
        flow.schedule(cron, **settings)  # type: ignore[arg-type]
    assert problem in str(refused.value) and "flow 'report'" in str(refused.value)
    assert refused.value.hint and flow.schedules == ()


def test_two_schedules_with_one_name_are_refused() -> None:
    flow = Flow("twice").step("a", lambda: 1).schedule("0 1 * * *")
    with pytest.raises(DefinitionError, match="a schedule named 'default' already exists"):
        flow.schedule("0 2 * * *")
