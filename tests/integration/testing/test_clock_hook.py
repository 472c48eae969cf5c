"""The clock hook: pgflow's SQL reads the time only through pgflow._now(), which is free.

These run on a plain test database (no test clock installed), i.e. the production schema.
The first test fails when SQL added later reads the wall clock any other way, so the test
clock of pgflow.testing keeps covering every time-dependent behaviour.
"""

from __future__ import annotations

import re

import psycopg

# A call of a wall-clock function (``pgflow._now(`` is not one: ``_`` precedes ``now``),
# the SQL-standard time keywords, and the 'now' literal.
WALL_CLOCK = re.compile(
    r"(?<!\w)(?:pg_catalog\s*\.\s*)?"
    r"(?:now|clock_timestamp|statement_timestamp|transaction_timestamp|timeofday)\s*\("
    r"|\b(?:current_timestamp|current_time|current_date|localtimestamp|localtime)\b"
    r"|'now'",
    re.IGNORECASE,
)
# Each exception with its reason. Everything else must call pgflow._now().
ALLOWED_FUNCTIONS = {
    "_now": "the hook itself",
    "_uuid7": "ids are ordered by wall-clock time, whatever the test clock says",
}
# Listener registrations (0046_table_listeners.sql) expire by the wall clock: a test clock
# moved forward must not silence the workers and clients that are running.
ALLOWED_FUNCTIONS.update(
    dict.fromkeys(
        (
            "_emit",
            "_emit_events",
            "_wake_workers",
            "_forget_listeners",
            "listen_tasks",
            "watch_run",
            "heartbeat",
        ),
        "listener registrations expire by the wall clock, not by the test clock",
    )
)
# History partitions (0047) cover ranges of run ids, which _uuid7 orders by the wall clock.
ALLOWED_FUNCTIONS.update(
    dict.fromkeys(
        ("_add_history_partition", "_partition_history", "create_history_partitions"),
        "history partitions hold ranges of run ids, which follow the wall clock (_uuid7)",
    )
)
ALLOWED_DEFAULTS = {
    ("schema_migrations", "applied_at"): "when the installer ran, for people reading it",
}


def _code(source: str) -> str:
    """A function body without its comments."""
    without_blocks = re.sub(r"/\*.*?\*/", " ", source, flags=re.DOTALL)
    return re.sub(r"--[^\n]*", " ", without_blocks)


def test_no_pgflow_function_reads_the_clock_but_through_now(conn: psycopg.Connection) -> None:
    rows = conn.execute(
        "select p.proname, p.prosrc from pg_proc p "
        "where p.pronamespace = 'pgflow'::regnamespace order by p.proname"
    ).fetchall()
    assert len(rows) > 30  # the schema is there
    offenders = sorted(
        f"pgflow.{row['proname']}: {match.group(0)}"
        for row in rows
        if row["proname"] not in ALLOWED_FUNCTIONS
        for match in WALL_CLOCK.finditer(_code(row["prosrc"]))
    )
    assert offenders == [], (
        "pgflow functions must read the time with pgflow._now() (see 0025_function_now.sql), "
        "so that the test clock of pgflow.testing moves them too"
    )


def test_no_column_default_reads_the_clock_but_through_now(conn: psycopg.Connection) -> None:
    rows = conn.execute(
        "select c.relname, a.attname, pg_get_expr(d.adbin, d.adrelid) as expr "
        "from pg_attrdef d join pg_class c on c.oid = d.adrelid "
        "join pg_attribute a on a.attrelid = d.adrelid and a.attnum = d.adnum "
        "where c.relnamespace = 'pgflow'::regnamespace order by 1, 2"
    ).fetchall()
    uses_now = {(r["relname"], r["attname"]) for r in rows if "pgflow._now()" in r["expr"]}
    assert ("step_tasks", "available_at") in uses_now and ("runs", "started_at") in uses_now
    offenders = [
        f"pgflow.{r['relname']}.{r['attname']} default {r['expr']}"
        for r in rows
        if (r["relname"], r["attname"]) not in ALLOWED_DEFAULTS and WALL_CLOCK.search(r["expr"])
    ]
    assert offenders == []


def test_the_guard_catches_every_way_of_reading_the_clock() -> None:
    for source in (
        "select now()",
        "x := pg_catalog.now() + interval '1 s';",
        "update t set at = clock_timestamp()",
        "where at < current_timestamp",
        "select statement_timestamp(), 1",
        "select 'now'::timestamptz",
        "v := LOCALTIMESTAMP;",
    ):
        assert WALL_CLOCK.search(_code(source)), source
    for source in ("select pgflow._now()", "-- now() in a comment", "/* now() */ select 1"):
        assert not WALL_CLOCK.search(_code(source)), source


def test_now_is_inlined_into_now_in_production(conn: psycopg.Connection) -> None:
    row = conn.execute(
        "select l.lanname, p.prosecdef, p.proconfig, p.provolatile, p.prosrc "
        "from pg_proc p join pg_language l on l.oid = p.prolang "
        "where p.oid = 'pgflow._now()'::regprocedure"
    ).fetchone()
    assert row is not None
    # No SET clause and one schema-qualified call: nothing a caller does can change it.
    assert (row["lanname"], row["prosecdef"], row["proconfig"], row["provolatile"]) == (
        "sql", False, None, "s",
    )  # fmt: skip
    assert " ".join(row["prosrc"].split()) == "select pg_catalog.now()"
    plan = conn.execute("explain (verbose, costs off) select pgflow._now()").fetchall()
    output = " ".join(line["QUERY PLAN"] for line in plan)
    assert "now()" in output and "_now" not in output


def test_a_callers_search_path_does_not_change_now(conn: psycopg.Connection) -> None:
    conn.execute("create schema trap")
    conn.execute("create function trap.now() returns timestamptz language sql as "
                 "$$ select timestamptz '2000-01-01 00:00+00' $$")  # fmt: skip
    conn.execute("set search_path = trap, pg_catalog")
    armed = conn.execute("select now() = timestamptz '2000-01-01 00:00+00' as hit").fetchone()
    assert armed == {"hit": True}  # an unqualified now() would be caught
    row = conn.execute("select pgflow._now() = pg_catalog.now() as same").fetchone()
    assert row == {"same": True}
