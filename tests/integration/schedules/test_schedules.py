"""Schedules in the database: deploy, exactly-once ticks across workers, catch-up, pause."""

from __future__ import annotations

import asyncio
import json
import threading
from typing import Any

import psycopg
import pytest
from click.testing import CliRunner
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from pgflow import AsyncClient, Flow
from pgflow.cli import main
from pgflow.compiler import compile_flow
from pgflow.deploy import deploy_flows
from pgflow.worker.scheduler import Scheduler
from pgflow.worker.store import WorkerStore
from tests.integration.runtime import Deploy, WorkerPool


def ticking(catch_up: str = "all", cron: str = "* * * * *") -> Flow:
    flow = Flow("ticking").step("echo", lambda input: input)
    return flow.schedule(cron, input={"hello": "world"}, catch_up=catch_up)  # type: ignore[arg-type]


def rows(url: str, sql: str, *params: Any) -> list[dict[str, Any]]:
    with psycopg.connect(url, autocommit=True, row_factory=dict_row) as conn:
        return conn.execute(sql.encode(), params).fetchall()  # type: ignore[arg-type]


def set_last_tick(url: str, minutes_ago: int) -> None:
    """Pretend the last tick was `minutes_ago` whole minutes before the current minute."""
    rows(
        url,
        "update pgflow.schedules set last_tick = date_trunc('minute', now()) "
        "- make_interval(mins => %s) returning 1",
        minutes_ago,
    )


def runs_of(url: str) -> list[dict[str, Any]]:
    return rows(url, "select run_id, input from pgflow.runs where flow_slug = 'ticking'")


async def race(url: str, schedulers: int, passes: int) -> int:
    """`schedulers` workers' schedulers, each on its own pool, racing `passes` passes."""
    pools = [AsyncConnectionPool(url, min_size=1, max_size=2, open=False) for _ in range(4)]
    for pool in pools:
        await pool.open()
    try:
        stores = [WorkerStore(pool, __import__("uuid").uuid4(), ["ticking"]) for pool in pools]
        racers = [Scheduler(stores[i % len(stores)], 1.0) for i in range(schedulers)]
        results = await asyncio.gather(*(r.tick() for r in racers for _ in range(passes)))
        return sum(results)
    finally:
        for pool in pools:
            await pool.close()


def test_deploy_stores_schedules_and_reports_changes(db_url: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        deploy_flows(conn, [ticking("latest", "0 * * * *")])
        changed = deploy_flows(conn, [ticking("latest", "30 * * * *")])
        removed = deploy_flows(conn, [Flow("ticking").step("echo", lambda input: input)])
    assert changed[0].action == "options updated"
    assert "schedule default 0 * * * * (UTC, catch_up=latest" in changed[0].detail
    assert "-> 30 * * * *" in changed[0].detail
    assert "schedule default 30 * * * *" in removed[0].detail and "-> none" in removed[0].detail
    assert rows(db_url, "select * from pgflow.schedules") == []


def test_compiled_sql_applies_the_schedule(db_url: str) -> None:
    rows(db_url, compile_flow(ticking("none", "15 3 * * *")).sql)
    stored = rows(db_url, "select name, cron, timezone, catch_up, input from pgflow.schedules")
    assert stored == [
        {"name": "default", "cron": "15 3 * * *", "timezone": "UTC", "catch_up": "none",
         "input": {"hello": "world"}}
    ]  # fmt: skip


async def test_racing_workers_start_each_tick_exactly_once(deploy: Deploy, db_url: str) -> None:
    deploy(ticking("all"))
    set_last_tick(db_url, 10)  # ten whole-minute ticks are due: T-9 .. T

    started = await race(db_url, schedulers=8, passes=3)

    runs = runs_of(db_url)
    assert started == len(runs) == 10
    assert len({r["run_id"] for r in runs}) == 10
    assert all(r["input"] == {"hello": "world"} for r in runs)
    assert await race(db_url, schedulers=4, passes=1) == 0  # nothing left to start


@pytest.mark.parametrize(("policy", "expected"), [("all", 10), ("latest", 1)])
async def test_catch_up_after_a_gap(
    deploy: Deploy, db_url: str, policy: str, expected: int
) -> None:
    deploy(ticking(policy))
    set_last_tick(db_url, 10)
    assert await race(db_url, schedulers=4, passes=2) == expected
    last = rows(db_url, "select last_tick = date_trunc('minute', now()) as at_newest "
                "from pgflow.schedules")  # fmt: skip
    assert last == [{"at_newest": True}]


async def test_catch_up_none_passes_over_a_late_tick(deploy: Deploy, db_url: str) -> None:
    minute = rows(db_url, "select extract(minute from now() - interval '5 minutes')::int as m")
    deploy(ticking("none", f"{minute[0]['m']} * * * *"))  # its newest tick is ~5 minutes old
    set_last_tick(db_url, 120)

    assert await race(db_url, schedulers=2, passes=2) == 0
    assert runs_of(db_url) == []
    moved = rows(db_url, "select last_tick > now() - interval '7 minutes' as moved "
                 "from pgflow.schedules")  # fmt: skip
    assert moved == [{"moved": True}]  # passed over, not looked at again


async def test_a_future_or_replayed_tick_is_refused_by_sql(deploy: Deploy, db_url: str) -> None:
    deploy(ticking("all"))
    start = "select pgflow.start_scheduled('ticking', 'default', %s::timestamptz) as run_id"
    assert rows(db_url, start, "2999-01-01T00:00:00Z") == [{"run_id": None}]
    set_last_tick(db_url, 1)
    first = rows(db_url, start.replace("%s::timestamptz", "date_trunc('minute', now())"))
    again = rows(db_url, start.replace("%s::timestamptz", "date_trunc('minute', now())"))
    assert first[0]["run_id"] is not None and again == [{"run_id": None}]
    assert len(runs_of(db_url)) == 1


async def test_a_ticks_run_id_is_time_ordered_and_kept_in_its_months_partition(
    deploy: Deploy, db_url: str
) -> None:
    deploy(ticking("all"))
    set_last_tick(db_url, 1)
    [tick] = rows(db_url, "select date_trunc('minute', now()) as at")
    [started] = rows(
        db_url, "select pgflow.start_scheduled('ticking', 'default', %s) as run_id", tick["at"]
    )
    run_id = started["run_id"]
    assert run_id.version == 7
    assert run_id.int >> 80 == int(tick["at"].timestamp() * 1000)  # the tick's millisecond
    [home] = rows(
        db_url, "select tableoid::regclass::text as p from pgflow.runs where run_id = %s", run_id
    )
    assert home["p"].startswith("pgflow.runs_p")  # its month's partition, not the default one


async def test_a_worker_starts_due_ticks_and_works_them(
    deploy: Deploy, workers: WorkerPool, db_url: str
) -> None:
    flow = ticking("all")
    deploy(flow)
    set_last_tick(db_url, 3)
    workers.start(flow, schedule_interval=0.1)
    async with AsyncClient(db_url) as client:
        for _ in range(200):
            done = await client.runs("ticking", status="completed")
            if len(done) == 3:
                break
            await asyncio.sleep(0.05)
    assert [r.output for r in done] == [{"echo": {"hello": "world"}}] * 3


async def test_pause_and_resume_from_the_cli(deploy: Deploy, db_url: str) -> None:
    deploy(ticking("all"))
    set_last_tick(db_url, 5)
    cli = CliRunner()

    paused = cli.invoke(main, ["schedules", "pause", "ticking", "--database-url", db_url])
    assert paused.exit_code == 0 and "paused 1 schedule of flow 'ticking'" in paused.output
    assert await race(db_url, schedulers=2, passes=1) == 0

    listed = cli.invoke(main, ["schedules", "list", "--json", "--database-url", db_url])
    [entry] = json.loads(listed.output)
    assert entry["paused"] is True and entry["next_tick"] is None and entry["cron"] == "* * * * *"

    resumed = cli.invoke(main, ["schedules", "resume", "ticking", "--database-url", db_url])
    assert resumed.exit_code == 0 and "resumed 1 schedule" in resumed.output
    assert await race(db_url, schedulers=2, passes=1) == 0  # missed ticks are not started
    [entry] = json.loads(cli.invoke(main, ["schedules", "--json", "--database-url", db_url]).output)
    assert entry["paused"] is False and entry["next_tick"] is not None


def test_unknown_flow_is_one_line_error_with_hint(db_url: str) -> None:
    result = CliRunner().invoke(main, ["schedules", "pause", "nope", "--database-url", db_url])
    assert result.exit_code == 1
    assert "flow 'nope' has no schedule" in result.output
    assert "pgflow schedules list" in result.output and "Traceback" not in result.output


def test_the_worker_role_may_start_ticks_but_not_change_schedules(db_url: str) -> None:
    checks = rows(
        db_url,
        "select has_function_privilege('pgflow_worker', "
        "'pgflow.start_scheduled(text, text, timestamptz, boolean)', 'execute') as start, "
        "has_function_privilege('pgflow_worker', 'pgflow.set_schedules(text, jsonb)', "
        "'execute') as define, has_function_privilege('pgflow_worker', "
        "'pgflow.pause_schedules(text, boolean, text)', 'execute') as pause",
    )
    assert checks == [{"start": True, "define": False, "pause": False}]


@pytest.mark.parametrize(
    ("entries", "problem"),
    [
        ('{"not": "an array"}', "must be a JSON array"),
        ('[{"name": "x"}]', "is malformed"),
        ('[{"name": "x", "cron": "* * * * *", "timezone": "Nowhere/Land"}]', "unknown time zone"),
        ('[{"name": "x", "cron": "* * * * *", "catch_up": "sometimes"}]', "has catch_up"),
        ('[{"name": "x", "cron": "1 * * * *"}, {"name": "x", "cron": "2 * * * *"}]', "two sch"),
    ],
)
def test_set_schedules_refuses_bad_entries_and_changes_nothing(
    deploy: Deploy, db_url: str, entries: str, problem: str
) -> None:
    deploy(ticking("all"))
    with pytest.raises(psycopg.Error) as refused:
        rows(db_url, "select pgflow.set_schedules('ticking', %s::jsonb)", entries)
    assert problem in str(refused.value)
    assert len(rows(db_url, "select 1 from pgflow.schedules")) == 1


async def test_a_second_start_of_a_tick_waits_for_the_first_and_starts_nothing(
    deploy: Deploy, db_url: str
) -> None:
    """The race, held open: worker A has started tick T (its transaction still open, the
    schedule row locked); worker B's start of the same tick blocks on that lock, and once A
    commits it sees the tick taken and starts nothing."""
    deploy(ticking("all"))
    set_last_tick(db_url, 1)
    start = (
        "select pgflow.start_scheduled('ticking', 'default', date_trunc('minute', now())) as run_id"
    )
    result: dict[str, Any] = {}
    with psycopg.connect(db_url, row_factory=dict_row) as first:
        [started] = first.execute(start).fetchall()  # A: open transaction, row locked
        assert started["run_id"] is not None

        def second() -> None:
            with psycopg.connect(db_url, autocommit=True, row_factory=dict_row) as conn:
                result["pid"] = conn.info.backend_pid
                result["row"] = conn.execute(start).fetchone()

        racer = threading.Thread(target=second)
        racer.start()
        for _ in range(200):  # until B waits on A's row lock
            waiting = rows(
                db_url,
                "select count(*) as n from pg_stat_activity where pid = %s "
                "and wait_event_type = 'Lock'",
                result.get("pid", 0),
            )
            if waiting[0]["n"]:
                break
            await asyncio.sleep(0.02)
        else:
            raise AssertionError("the second start did not wait for the first")
        assert "row" not in result  # still blocked while A is open
        first.commit()
    racer.join(10)
    assert result["row"] == {"run_id": None}
    assert [r["run_id"] for r in runs_of(db_url)] == [started["run_id"]]
