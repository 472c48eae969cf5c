"""History partitions: runs, step states and tasks partitioned by run id, month by month.

Run ids are UUIDv7, so a month of runs lives in one partition with its step states and
tasks; retention drops such a month whole. Ids that are not time-ordered go to the default
partition and lose nothing.
"""

from __future__ import annotations

import itertools
import re
import threading
import uuid
from typing import Any

import psycopg
import pytest
from psycopg.types.json import Jsonb

from tests.integration.sql.helpers import claim, complete, define, one, q, start, tasks

TABLES = ("runs", "step_states", "step_tasks")


def _home(conn: psycopg.Connection[Any], table: str, run_id: Any) -> set[str]:
    """The partitions holding the run's rows in a runtime table."""
    rows = q(
        conn,
        f"select distinct tableoid::regclass::text as p from pgflow.{table} where run_id = %s",
        run_id,
    )
    return {r["p"] for r in rows}


def _month_id(conn: psycopg.Connection[Any], months: int) -> uuid.UUID:
    """A UUIDv7-shaped id of the middle of the month `months` from now (negative: past)."""
    row = one(
        conn,
        "select overlay(pgflow._uuid7_floor(date_trunc('month', now(), 'UTC')"
        " + make_interval(months => %s, days => 14))::text placing '7abc-8def-0123'"
        " from 15 for 14)::uuid as id",
        months,
    )
    return uuid.UUID(str(row["id"]))


def _months(conn: psycopg.Connection[Any]) -> list[str]:
    return [r["month"] for r in q(conn, "select month from pgflow.history_partitions()")]


def _suffix(conn: psycopg.Connection[Any], months: int) -> str:
    row = one(
        conn,
        "select to_char(date_trunc('month', now(), 'UTC') at time zone 'UTC'"
        " + make_interval(months => %s), 'YYYYMM') as s",
        months,
    )
    return str(row["s"])


def _past_month_with_runs(conn: psycopg.Connection[Any], n: int) -> tuple[str, list[Any]]:
    """A partition for two months ago, holding n one-step runs of flow f (not finished)."""
    q(conn, "select pgflow._add_history_partition(now() - interval '2 months')")
    base = _month_id(conn, -2)
    ids = [uuid.UUID(int=base.int + i) for i in range(n)]
    for run_id in ids:
        start(conn, "f", {}, run_id)
    return _suffix(conn, -2), ids


def test_a_fresh_install_partitions_the_runtime_tables_by_month(conn):
    for table in TABLES:
        kind = one(conn, f"select relkind from pg_class where oid = 'pgflow.{table}'::regclass")
        assert kind["relkind"] == "p"
    months = _months(conn)
    assert months[-1] == "default" and len(months) == 4  # this month, the next two, default
    this = _suffix(conn, 0)
    assert months[0] == f"{this[:4]}-{this[4:]}"
    parts = q(conn, "select lower_run_id, upper_run_id from pgflow.history_partitions()")
    assert all(a["upper_run_id"] == b["lower_run_id"] for a, b in itertools.pairwise(parts[:3]))


def test_a_run_lives_in_its_months_partition_with_its_states_and_tasks(conn):
    define(conn, "f", ("a", []), ("b", ["a"]))
    run_id = start(conn, "f")["run_id"]
    [task] = claim(conn, "f")
    complete(conn, task, 1)
    this = _suffix(conn, 0)
    for table in TABLES:
        assert _home(conn, table, run_id) == {f"pgflow.{table}_p{this}"}


def test_an_id_that_is_not_time_ordered_goes_to_the_default_partition_and_runs(conn):
    define(conn, "f", ("a", []))
    run_id = uuid.UUID("e1f4a9b2-5c3d-4e6f-8a7b-9c0d1e2f3a4b")  # a random (version 4) id
    start(conn, "f", {}, run_id)
    [task] = claim(conn, "f")
    complete(conn, task, 7)
    assert (
        one(conn, "select status from pgflow.runs where run_id = %s", run_id)["status"]
        == "completed"
    )
    for table in TABLES:
        assert _home(conn, table, run_id) == {f"pgflow.{table}_default"}


def test_a_claim_changes_only_the_tasks_it_picked_when_ctids_repeat_across_partitions(conn):
    # A ctid is unique within one partition only: a claim that re-found its picks by ctid
    # alone also leased the finished task of another partition at the same ctid.
    define(conn, "f", ("a", []))
    old = start(conn, "f", {}, uuid.UUID("ffff0000-0000-4000-8000-000000000001"))["run_id"]
    [first] = claim(conn, "f")
    complete(conn, first, "done")
    taken = one(conn, "select ctid::text as c from pgflow.step_tasks where run_id = %s", old)["c"]
    new = []
    while taken not in {
        r["c"]
        for r in q(conn, "select ctid::text as c from pgflow.step_tasks where status = 'queued'")
    }:
        new.append(start(conn, "f")["run_id"])
    assert {t["run_id"] for t in claim(conn, "f", 50)} == set(new)
    assert tasks(conn, old)[0]["status"] == "completed"
    started = one(conn, "select count(*) as n from pgflow.step_tasks where status = 'started'")
    assert started["n"] == len(new)


@pytest.mark.parametrize("pick", ["plain", "due", "limited"])
def test_a_claim_reads_only_the_tasks_it_takes_even_in_a_run_with_thousands(conn, pick):
    # Picks were re-found by (run id, ctid). With the run id as the index condition and the
    # ctid as a filter, each pick read every task of its run: a 10,000-element map took
    # minutes to drain in a new month's partition (its plan is made while it is empty).
    define(conn, "m", ("each", [], {"step_type": "map"}))
    if pick == "limited":
        q(conn, "select pgflow.set_limits('m', %s)",
          Jsonb([{"step": "each", "kind": "concurrency", "max": 5000}]))  # fmt: skip
    assert claim(conn, "m") == []  # this session's plans are made on an empty partition
    run_id = start(conn, "m", list(range(2000)))["run_id"]
    if pick == "due":  # waited (a delay, a backoff): tagged by the claim, see _tag_due_tasks
        q(conn, "update pgflow.step_tasks set priority_at = null where run_id = %s", run_id)
    with conn.transaction():
        assert len(claim(conn, "m", 100)) == 100
        read = one(
            conn,
            "select sum(coalesce(idx_tup_fetch, 0) + coalesce(seq_tup_read, 0)) as n"
            " from pg_stat_xact_user_tables where relname like 'step_tasks%%'",
        )["n"]
        tagged = one(
            conn,
            "select count(*) as n from pgflow.step_tasks where priority_at is not null",
        )["n"]
    touched = tagged if pick == "due" else 100  # due: the claim tagged up to 1,000 first
    assert read < 5 * touched, f"one claim of 100 tasks ({touched} touched) read {read} rows"


def test_a_batch_report_reads_only_the_tasks_it_completes_even_in_a_run_with_thousands(conn):
    # complete_tasks joins the reported keys to the tasks in one update: by primary-key
    # probes, even with this session's plan made while the month's partition was empty
    define(conn, "m", ("each", [], {"step_type": "map"}))
    nobody = [uuid.uuid4()], ["each"], [0], ['"x"'], [1]
    q(conn, "select * from pgflow.complete_tasks(%s, %s, %s, %s::jsonb[], %s)", *nobody)
    start(conn, "m", list(range(2000)))
    batch = claim(conn, "m", 100)
    with conn.transaction():
        rows = q(
            conn,
            "select * from pgflow.complete_tasks(%s, %s, %s, %s::jsonb[], %s)",
            [t["run_id"] for t in batch],
            [t["step_slug"] for t in batch],
            [t["task_index"] for t in batch],
            ["1"] * len(batch),
            [t["attempt"] for t in batch],
        )
        read = one(
            conn,
            "select sum(coalesce(idx_tup_fetch, 0) + coalesce(seq_tup_read, 0)) as n"
            " from pg_stat_xact_user_tables where relname like 'step_tasks%%'",
        )["n"]
    assert [r["status"] for r in rows] == ["completed"] * 100
    assert read < 5 * 100, f"one report of 100 tasks read {read} task rows"


def test_a_run_finishing_cancels_only_its_own_tasks(conn):
    define(conn, "f", ("a", []), ("b", []), max_attempts=1)
    old = start(conn, "f", {}, uuid.UUID("ffff0000-0000-4000-8000-000000000002"))["run_id"]
    new = start(conn, "f")["run_id"]
    q(conn, "select pgflow.cancel_run(%s)", new)
    assert {t["status"] for t in tasks(conn, old)} == {"queued"}
    assert {t["status"] for t in tasks(conn, new)} == {"cancelled"}


def test_creating_partitions_ahead_is_idempotent_and_moves_rows_of_the_new_month(conn):
    define(conn, "f", ("a", []))
    ahead = _month_id(conn, 4)  # a caller-chosen id four months ahead: no partition yet
    start(conn, "f", {}, ahead)
    assert _home(conn, "runs", ahead) == {"pgflow.runs_default"}
    created = [r["m"] for r in q(conn, "select m from pgflow.create_history_partitions(5) m")]
    assert len(created) == 3  # months 3, 4 and 5 ahead
    assert q(conn, "select * from pgflow.create_history_partitions(5)") == []
    suffix = _suffix(conn, 4)
    for table in TABLES:
        assert _home(conn, table, ahead) == {f"pgflow.{table}_p{suffix}"}
    [task] = claim(conn, "f")
    assert complete(conn, task, 1)["status"] == "completed"
    assert _months(conn)[-1] == "default" and len(_months(conn)) == 7


@pytest.mark.parametrize("months_ahead", [None, -1, 25])
def test_create_history_partitions_refuses_a_bad_horizon(conn, months_ahead):
    with pytest.raises(psycopg.Error, match="months_ahead must be 0 to 24") as raised:
        q(conn, "select pgflow.create_history_partitions(%s)", months_ahead)
    assert raised.value.sqlstate == "PGF08"


def test_one_caller_at_a_time_creates_partitions(conn, db_url):
    with psycopg.connect(db_url) as holder:
        holder.execute("select pg_advisory_xact_lock(hashtext('pgflow'), hashtext('partitions'))")
        assert q(conn, "select * from pgflow.create_history_partitions(6)") == []
        holder.rollback()
    assert len(q(conn, "select * from pgflow.create_history_partitions(6)")) == 4


def test_dropping_a_month_removes_its_runs_in_one_step_and_reports_them(conn):
    define(conn, "f", ("a", []), max_attempts=1)
    suffix, ids = _past_month_with_runs(conn, 5)
    blob = uuid.uuid4()
    q(
        conn,
        "insert into pgflow.blobs (run_id, blob_id, store, size, sha256) values"
        " (%s, %s, 'pg', 1, repeat('0', 64)), (%s, %s, 'files', 1, repeat('0', 64))",
        ids[0],
        blob,
        ids[1],
        blob,
    )
    for task in claim(conn, "f", 10):
        complete(conn, task, 1)
    current = start(conn, "f")["run_id"]
    dropped = q(conn, "select * from pgflow.drop_history_partitions('0 seconds')")
    assert dropped == [
        {"month": f"{suffix[:4]}-{suffix[4:]}", "flow": "f", "status": "completed", "runs": 5}
    ]
    for table in TABLES:
        assert q(conn, "select to_regclass(%s) as t", f"pgflow.{table}_p{suffix}")[0]["t"] is None
    assert one(conn, "select count(*) as n from pgflow.runs")["n"] == 1  # the current run
    assert _home(conn, "runs", current)
    assert one(conn, "select count(*) as n from pgflow.blobs")["n"] == 0
    tombstones = q(conn, "select store, run_id from pgflow.blob_tombstones")
    assert tombstones == [{"store": "files", "run_id": ids[1]}]
    # a caller may still start a run with an id of the dropped month: it goes to default
    late = uuid.UUID(int=ids[0].int + 1000)
    start(conn, "f", {}, late)
    assert _home(conn, "runs", late) == {"pgflow.runs_default"}


def test_a_month_with_a_live_or_recent_run_is_kept(conn):
    define(conn, "f", ("a", []), max_attempts=1)
    suffix, _ = _past_month_with_runs(conn, 3)
    first, *rest = claim(conn, "f", 10)
    complete(conn, first, 1)
    assert q(conn, "select * from pgflow.drop_history_partitions('0 seconds')") == []  # 2 live
    for task in rest:
        complete(conn, task, 1)
    assert q(conn, "select * from pgflow.drop_history_partitions('1 day')") == []  # recent
    assert one(conn, "select to_regclass(%s) as t", f"pgflow.runs_p{suffix}")["t"] is not None
    assert len(q(conn, "select * from pgflow.drop_history_partitions('0 seconds')")) == 1


def test_the_current_month_and_the_default_partition_are_never_dropped(conn):
    define(conn, "f", ("a", []))
    start(conn, "f")
    start(conn, "f", {}, uuid.UUID("ffff0000-0000-4000-8000-000000000003"))
    for task in claim(conn, "f", 10):
        complete(conn, task, 1)
    assert q(conn, "select * from pgflow.drop_history_partitions('0 seconds')") == []
    assert len(_months(conn)) == 4


@pytest.mark.parametrize("older_than", [None, "-1 day"])
def test_drop_history_partitions_refuses_a_bad_age(conn, older_than):
    with pytest.raises(psycopg.Error, match="older_than must be an interval") as raised:
        q(conn, "select * from pgflow.drop_history_partitions(%s::interval)", older_than)
    assert raised.value.sqlstate == "PGF08"


def test_prune_and_retention_drop_whole_months_first(conn):
    define(conn, "f", ("a", []), max_attempts=1)
    suffix, _ = _past_month_with_runs(conn, 4)
    for task in claim(conn, "f", 10):
        complete(conn, task, 1)
    assert one(conn, "select pgflow.apply_retention(10) as n")["n"] == 0  # f keeps forever
    assert one(conn, "select to_regclass(%s) as t", f"pgflow.runs_p{suffix}")["t"] is not None
    q(conn, "update pgflow.flows set retention = '1 second' where flow_slug = 'f'")
    q(conn, "update pgflow.runs set finished_at = finished_at - interval '1 hour'")
    assert (
        one(conn, "select pgflow.apply_retention(1) as n")["n"] == 4
    )  # whole month, past max_runs
    assert one(conn, "select to_regclass(%s) as t", f"pgflow.runs_p{suffix}")["t"] is None
    suffix, _ = _past_month_with_runs(conn, 2)
    for task in claim(conn, "f", 10):
        complete(conn, task, 1)
    assert one(conn, "select pgflow.prune('0 seconds', batch_size => 1) as n")["n"] == 2
    assert one(conn, "select to_regclass(%s) as t", f"pgflow.runs_p{suffix}")["t"] is None


def test_a_month_whose_tables_stay_busy_is_left_for_the_next_call(conn, db_url):
    define(conn, "f", ("a", []))
    suffix, ids = _past_month_with_runs(conn, 1)
    q(conn, "select pgflow.cancel_run(%s)", ids[0])
    with psycopg.connect(db_url) as reader:
        reader.execute("select 1 from pgflow.runs where run_id = %s", (ids[0],))  # holds a lock
        assert q(conn, "select * from pgflow.drop_history_partitions('0 seconds')") == []
        reader.rollback()
    assert one(conn, "select to_regclass(%s) as t", f"pgflow.runs_p{suffix}")["t"] is not None
    assert len(q(conn, "select * from pgflow.drop_history_partitions('0 seconds')")) == 1


def test_no_run_can_join_a_month_while_it_is_dropped(conn, db_url):
    # The drop checks the month again under its locks: a run started in that month by a
    # transaction that committed after the first check keeps the month.
    define(conn, "f", ("a", []))
    suffix, ids = _past_month_with_runs(conn, 1)
    q(conn, "select pgflow.cancel_run(%s)", ids[0])
    late = uuid.UUID(int=ids[0].int + 1)
    with psycopg.connect(db_url) as starter:
        starter.execute("select pgflow.start_flow('f', '{}', %s)", (late,))
        result: list[Any] = []
        dropper = threading.Thread(
            target=lambda: result.extend(
                q(conn, "select * from pgflow.drop_history_partitions('0 seconds')")
            )
        )
        dropper.start()
        waiting = "select count(*) as n from pg_stat_activity where wait_event_type = 'Lock'"
        with psycopg.connect(db_url, autocommit=True, row_factory=psycopg.rows.dict_row) as watch:
            while watch.execute(waiting).fetchone()["n"] == 0:  # type: ignore[index]
                threading.Event().wait(0.01)
        starter.commit()
        dropper.join(10)
    assert result == []
    assert _home(conn, "runs", late) == {f"pgflow.runs_p{suffix}"}


def _analyzed_empty(conn: psycopg.Connection[Any], flow: str) -> None:
    """Leave the runtime partitions empty and analysed so: the planner then estimates them at
    no rows whatever they hold later (until autovacuum, switched off here, analyses them)."""
    for _ in range(50):
        start(conn, flow)
    q(conn, "delete from pgflow.step_tasks; delete from pgflow.step_states;"
            " delete from pgflow.runs")  # fmt: skip
    partitions = q(
        conn,
        "select c.oid::regclass::text as name from pg_catalog.pg_inherits i"
        " join pg_catalog.pg_class c on c.oid = i.inhrelid"
        " where i.inhparent in ('pgflow.runs'::regclass, 'pgflow.step_tasks'::regclass,"
        " 'pgflow.step_states'::regclass)",
    )
    for p in partitions:
        q(conn, f"alter table {p['name']} set (autovacuum_enabled = false)")
    q(conn, "analyze pgflow.runs, pgflow.step_tasks, pgflow.step_states")


def _reads(conn: psycopg.Connection[Any]) -> int:
    """Rows this session has read from the runtime tables, not flushed to the views yet."""
    row = one(
        conn,
        "select sum(coalesce(idx_tup_fetch, 0) + coalesce(seq_tup_read, 0)) as n"
        " from pg_stat_xact_user_tables where relname ~ '^(runs|step_states|step_tasks)'",
    )
    return int(row["n"] or 0)


def _chain(steps: int) -> list[tuple[Any, ...]]:
    return [("s0", [])] + [(f"s{i}", [f"s{i - 1}"]) for i in range(1, steps)]


@pytest.mark.parametrize("steps", [1, 2])
def test_a_claim_reads_one_run_per_task_after_its_partition_was_analyzed_empty(conn, db_url, steps):
    # After a prune leaves the month's partition empty and ANALYZE records it so, a plan made
    # then (and cached for the session) looked each claimed task's run up by walking the whole
    # runs index with the run id as a filter: on an empty table both cost the same. Once runs
    # came back, every claimed task read every run of the partition (a benchmark drain 6x
    # slower). _claim_picked allows only bitmap scans, which need the key as the condition.
    define(conn, "f", *_chain(steps))
    _analyzed_empty(conn, "f")
    assert claim(conn, "f") == []  # this session's plans are made on the "empty" partitions
    with psycopg.connect(db_url, autocommit=True) as other:
        for _ in range(500):
            start(other, "f")
    with conn.transaction():
        before = _reads(conn)
        assert len(claim(conn, "f", 50)) == 50
        read = _reads(conn) - before
    assert read < 6 * 50, f"one claim of 50 tasks read {read} rows"


def test_starting_and_completing_one_by_one_read_a_few_rows_after_an_analyzed_empty_partition(
    conn, db_url
):
    # The same plans on the one-by-one path (start_flow, complete_task: _advance_run,
    # _start_step, _queue_head, _tasks_done, _start_dependents) read the partitions by
    # sequential scans: 500 starts read 224,541 run rows. Their key look-ups stay index
    # probes now (enable_seqscan off).
    define(conn, "f", *_chain(2))
    _analyzed_empty(conn, "f")
    first = claim(conn, "f")  # plan every statement of the path in this session
    start(conn, "f")
    (task,) = claim(conn, "f")
    complete(conn, task, 1)
    assert first == []
    with psycopg.connect(db_url, autocommit=True) as other:
        for _ in range(500):
            start(other, "f")
    tasks_ = claim(conn, "f", 10)
    with conn.transaction():
        before = _reads(conn)
        start(conn, "f")
        started = _reads(conn) - before
        for t in tasks_:
            complete(conn, t, 1)
        completed = _reads(conn) - before - started
    assert started < 50, f"one start_flow read {started} rows"
    assert completed < 50 * len(tasks_), f"10 complete_task calls read {completed} rows"


TASK_PATH = (
    "start_flow",
    "claim_tasks",
    "complete_task",
    "complete_tasks",
    "fail_task",
    "fail_tasks",
)


def test_every_function_of_the_task_path_that_reads_the_history_tables_forbids_seq_scans(conn):
    # The tests above show one such plan each; this keeps a function added to the path (or a
    # caller that plans it first outside the path, like sweep_expired_tasks) from bringing the
    # walk back. The SET clause applies to every plan the function makes, whoever calls it.
    functions = q(
        conn,
        "select p.proname as name, p.prosrc as body,"
        " coalesce(p.proconfig, '{}') @> '{enable_seqscan=off}' as off"
        " from pg_catalog.pg_proc p where p.pronamespace = 'pgflow'::regnamespace",
    )
    body = {f["name"]: f["body"] for f in functions}
    forbids = {f["name"] for f in functions if f["off"]}
    reached, todo = set(), list(TASK_PATH)
    while todo:
        name = todo.pop()
        if name not in reached:
            reached.add(name)
            todo += [c for c in re.findall(r"pgflow\.(\w+)\s*\(", body[name]) if c in body]
    history = re.compile(r"\bpgflow\.(runs|step_states|step_tasks)\b(?!\s*\()")
    readers = {name for name in reached if history.search(body[name])}
    assert len(readers) > 15, sorted(readers)  # the walk found the path
    assert sorted(readers - forbids) == []
