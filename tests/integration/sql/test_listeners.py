"""Notifications go to registered listeners only, and no wake-up is lost (0200, 0046).

A transaction notifies ``pgflow_tasks`` only while a live task listener of the flow waits
(or none is registered for it: unregistered LISTENers), and ``pgflow_run_<id>`` only while
a listener watches the run. The barrier (sync_tasks / sync_run) closes the race between a
notifier that looked before a registration committed and the listener's next read: the
races below hold the notifier's transaction open (tests/integration/races.py).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from pgflow.sql import schema_files
from tests.integration.races import race
from tests.integration.sql.helpers import claim, complete, define, one, q, start

TASKS_KEYS = 1885824628  # the advisory key space of _wake_workers (0200)


@contextmanager
def listening(db_url: str, *channels: str) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(db_url, autocommit=True) as conn:
        for channel in channels:
            conn.execute(f'listen "{channel}"')
        yield conn


def notes(listener: psycopg.Connection[Any], timeout: float = 0.3) -> list[tuple[str, str]]:
    """Every notification that arrives within ``timeout`` seconds of quiet."""
    return [(n.channel, n.payload) for n in listener.notifies(timeout=timeout)]


def register(conn: psycopg.Connection[Any], worker: uuid.UUID, flows: Any = ("f",)) -> bool:
    flow_slugs = None if flows is None else list(flows)
    sql = "select pgflow.listen_tasks(%s, %s) as live"
    return bool(one(conn, sql, worker, flow_slugs)["live"])


def waiting(conn: psycopg.Connection[Any], listener: uuid.UUID) -> list[bool]:
    rows = q(conn, "select waiting from pgflow.listeners where listener_id = %s", listener)
    return [r["waiting"] for r in rows]


def saturate(conn: psycopg.Connection[Any], worker: uuid.UUID) -> None:
    """A registered worker whose last claim was full: it is not waiting."""
    register(conn, worker)
    start(conn, "f")
    assert len(claim(conn, "f", 1, worker)) == 1
    assert waiting(conn, worker) == [False]


def test_a_saturated_worker_and_no_watcher_get_no_notification(conn, db_url):
    define(conn, "f", ("a", []), ("b", ["a"]))
    worker = uuid.uuid4()
    register(conn, worker)
    run_id = start(conn, "f")["run_id"]
    with listening(db_url, "pgflow_tasks", f"pgflow_run_{run_id}") as listener:
        (a,) = claim(conn, "f", 1, worker)  # full: the worker claims again when it has room
        complete(conn, a, 1)  # b becomes claimable; step and run events: nobody watches
        (b,) = claim(conn, "f", 1, worker)
        complete(conn, b, 2)
        assert one(conn, "select status from pgflow.runs where run_id = %s", run_id) == {
            "status": "completed"
        }
        assert notes(listener) == []


def test_a_waiting_worker_and_a_watcher_are_notified(conn, db_url):
    define(conn, "f", ("a", []), ("b", ["a"]))
    worker = uuid.uuid4()
    register(conn, worker)
    run_id = start(conn, "f")["run_id"]
    q(conn, "select pgflow.watch_run(%s, %s)", uuid.uuid4(), run_id)
    with listening(db_url, "pgflow_tasks", f"pgflow_run_{run_id}") as listener:
        (a,) = claim(conn, "f", 10, worker)  # short: the worker waits for a notification
        assert waiting(conn, worker) == [True]
        complete(conn, a, 1)
        got = notes(listener)
    assert ("pgflow_tasks", "f") in got
    events = [json.loads(p)["event"] for c, p in got if c != "pgflow_tasks"]
    assert events == ["step:a:completed", "step:b:started"]


def test_the_barrier_waits_for_a_notifier_that_looked_before_the_registration(conn, db_url):
    define(conn, "f", ("a", []))
    saturate(conn, uuid.uuid4())
    worker = uuid.uuid4()

    def register_then_barrier(racer: psycopg.Connection[Any]) -> Any:
        register(racer, worker)  # commits: from now on, notifiers see a waiting listener
        return racer.execute("select pgflow.sync_tasks(array['f'])").fetchone()

    def waits_on_the_flows_key(watcher: psycopg.Connection[Any], pid: int) -> None:
        lock = watcher.execute(
            "select locktype, classid, granted from pg_locks where pid = %s and not granted",
            [pid],
        ).fetchone()
        assert lock == {"locktype": "advisory", "classid": TASKS_KEYS, "granted": False}

    with listening(db_url, "pgflow_tasks") as listener:
        # the notifier starts a run and looks: the only listener of f is not waiting
        outcome = race(
            db_url,
            lambda holder: start(holder, "f", {"held": True}),
            register_then_barrier,
            while_blocked=waits_on_the_flows_key,
        )
        assert outcome.blocked and outcome.result() == {"sync_tasks": True}
        assert notes(listener) == []  # it never notified: without the barrier, a lost wake-up
        (task,) = claim(conn, "f", 10, worker)  # the claim after the barrier finds its task
        assert task["input"] == {"held": True}
        start(conn, "f")  # a later notifier sees the registration
        assert notes(listener) == [("pgflow_tasks", "f")]


def test_a_notifier_that_meets_a_barrier_notifies_without_waiting(conn, db_url):
    define(conn, "f", ("a", []))
    saturate(conn, uuid.uuid4())  # normally nothing would be notified for f
    with listening(db_url, "pgflow_tasks") as listener:

        def start_meanwhile(watcher: psycopg.Connection[Any], pid: int) -> None:
            start(watcher, "f")  # returns although a barrier waits for f's key
            assert notes(listener, 0.2) == [("pgflow_tasks", "f")]

        outcome = race(
            db_url,
            lambda holder: start(holder, "f"),
            lambda racer: racer.execute("select pgflow.sync_tasks(array['f'])").fetchone(),
            while_blocked=start_meanwhile,
        )
        assert outcome.result() == {"sync_tasks": True}
        assert notes(listener) == []  # the held notifier looked and found nobody waiting


def test_the_run_barrier_waits_for_a_change_made_before_the_watch(conn, db_url):
    define(conn, "f", ("a", []))
    run_id = start(conn, "f")["run_id"]
    (task,) = claim(conn, "f")
    watcher_id = uuid.uuid4()

    def watch_then_barrier(racer: psycopg.Connection[Any]) -> Any:
        racer.execute("select pgflow.watch_run(%s, %s)", [watcher_id, run_id])
        racer.execute("select pgflow.sync_run(%s)", [run_id])
        return one(racer, "select status from pgflow.runs where run_id = %s", run_id)

    with listening(db_url, f"pgflow_run_{run_id}") as listener:
        outcome = race(db_url, lambda holder: complete(holder, task, 1), watch_then_barrier)
        assert outcome.blocked and outcome.result() == {"status": "completed"}
        assert notes(listener) == []  # the completion looked before the watch: not notified


def test_unregistered_listeners_keep_being_notified(conn, db_url):
    define(conn, "f", ("a", []))
    define(conn, "g", ("a", []))
    other, saturated = uuid.uuid4(), uuid.uuid4()
    with listening(db_url, "pgflow_tasks") as listener:
        start(conn, "f")  # nobody registered for f: an older worker may LISTEN
        assert notes(listener) == [("pgflow_tasks", "f")]
        register(conn, other, ["g"])
        q(conn, "update pgflow.listeners set waiting = false where listener_id = %s", other)
        start(conn, "f")  # a listener of another flow changes nothing for f
        assert notes(listener) == [("pgflow_tasks", "f")]
        saturate(conn, saturated)
        notes(listener)
        start(conn, "f")  # f has a registered listener, and it does not wait
        assert notes(listener) == []
        q(conn, "update pgflow.listeners set expires_at = now() - interval '1 s'")
        start(conn, "f")  # it expired: f has no live listener any more
        assert notes(listener) == [("pgflow_tasks", "f")]


def test_listeners_of_every_flow_and_every_run(conn, db_url):
    define(conn, "f", ("a", []))
    saturate(conn, uuid.uuid4())
    run_id = start(conn, "f")["run_id"]
    with listening(db_url, "pgflow_tasks", f"pgflow_run_{run_id}") as listener:
        start(conn, "f")
        assert notes(listener) == []
        viewer = uuid.uuid4()
        register(conn, viewer, None)  # every flow
        q(conn, "select pgflow.watch_run(%s, null)", viewer)  # every run
        start(conn, "f")
        (task,) = [t for t in claim(conn, "f") if t["run_id"] == run_id]
        complete(conn, task, 1)
        got = notes(listener)
    assert ("pgflow_tasks", "f") in got
    events = [json.loads(p)["event"] for c, p in got if c != "pgflow_tasks"]
    assert events == ["step:a:completed", "run:completed"]


def report_all(conn: psycopg.Connection[Any], batch: list[dict[str, Any]]) -> None:
    """Every claimed task completed by one complete_tasks call (its events emitted once)."""
    q(
        conn,
        "select * from pgflow.complete_tasks(%s, %s, %s, %s::jsonb[], %s)",
        [t["run_id"] for t in batch],
        [t["step_slug"] for t in batch],
        [t["task_index"] for t in batch],
        ["1"] * len(batch),
        [t["attempt"] for t in batch],
    )


def test_a_batch_notifies_each_watched_run_of_its_events_in_order(conn, db_url):
    define(conn, "f", ("a", []), ("b", ["a"]))
    define(conn, "g", ("a", []))
    runs = [start(conn, flow)["run_id"] for flow in ("f", "g", "f", "g")]
    for run_id in runs[:2]:
        q(conn, "select pgflow.watch_run(%s, %s)", uuid.uuid4(), run_id)
    with listening(db_url, *[f"pgflow_run_{r}" for r in runs]) as listener:
        report_all(conn, claim(conn, ["f", "g"], 10))
        got = notes(listener)
    events = {r: [json.loads(p)["event"] for c, p in got if c == f"pgflow_run_{r}"] for r in runs}
    assert events == {
        runs[0]: ["step:a:completed", "step:b:started"],
        runs[1]: ["step:a:completed", "run:completed"],
        runs[2]: [],  # nobody watches these two
        runs[3]: [],
    }


def test_a_join_started_by_a_batch_follows_the_completion_of_its_last_dependency(conn, db_url):
    define(conn, "d", ("root", []), ("l", ["root"]), ("r", ["root"]), ("join", ["l", "r"]))
    run_id = start(conn, "d")["run_id"]
    report_all(conn, claim(conn, "d", 10))  # root
    q(conn, "select pgflow.watch_run(%s, %s)", uuid.uuid4(), run_id)
    with listening(db_url, f"pgflow_run_{run_id}") as listener:
        report_all(conn, claim(conn, "d", 10))  # l and r in one batch: the join starts
        got = [json.loads(p)["event"] for _, p in notes(listener)]
    assert got == ["step:l:completed", "step:r:completed", "step:join:started"]


def test_a_batch_outside_read_committed_notifies_every_event(conn, db_url):
    define(conn, "g", ("a", []))
    run_id = start(conn, "g")["run_id"]
    with listening(db_url, f"pgflow_run_{run_id}") as listener, psycopg.connect(db_url) as other:
        other.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        report_all(other, claim(other, "g", 10))
        other.commit()
        got = [json.loads(p)["event"] for _, p in notes(listener)]
    assert got == ["step:a:completed", "run:completed"]


def test_a_notifier_outside_read_committed_always_notifies(conn, db_url):
    define(conn, "f", ("a", []))
    saturate(conn, uuid.uuid4())
    with listening(db_url, "pgflow_tasks") as listener, psycopg.connect(db_url) as other:
        other.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        other.execute("select pgflow.start_flow('f', '{}')")
        other.commit()  # its snapshot may predate a registration: it cannot trust its look
        assert notes(listener) == [("pgflow_tasks", "f")]


def test_claims_mark_the_worker_waiting_only_when_that_changes(conn):
    define(conn, "f", ("a", []))
    worker = uuid.uuid4()
    register(conn, worker)

    def version() -> tuple[bool, str]:
        row = one(conn, "select waiting, xmin::text from pgflow.listeners")
        return row["waiting"], row["xmin"]

    before = version()
    claim(conn, "f", 10, worker)
    assert version() == before  # short, and it already waited: no write
    for _ in range(3):
        start(conn, "f")
    claim(conn, "f", 1, worker)
    full = version()
    assert full[0] is False
    claim(conn, "f", 1, worker)
    assert version() == full  # full again: no write
    claim(conn, "f", 5, worker)  # one left: short
    assert version()[0] is True


def test_registrations_renew_lapse_and_go(conn):
    worker, run_id = uuid.uuid4(), uuid.uuid4()
    q(conn, "select pgflow.register_worker(%s, array['f', 'g'])", worker)
    assert register(conn, worker, ["f", "g"]) is False  # new
    assert register(conn, worker, ["f", "g"]) is True  # live: no barrier needed
    assert register(conn, worker, ["f"]) is True  # g's row goes
    rows = q(conn, "select flow_slug from pgflow.listeners where listener_id = %s", worker)
    assert rows == [{"flow_slug": "f"}]
    watch = "select pgflow.watch_run(%s, %s, 5) as live"
    assert one(conn, watch, worker, run_id)["live"] is False
    assert one(conn, watch, worker, run_id)["live"] is True

    q(conn, "update pgflow.listeners set expires_at = now() + interval '1 s'")
    assert one(conn, "select pgflow.heartbeat(%s) as known", worker)["known"] is True
    left = {
        r["flow_slug"]: round(r["left"])
        for r in q(
            conn,
            "select flow_slug, extract(epoch from expires_at - now()) as left"
            " from pgflow.listeners",
        )
    }
    assert left == {"f": 60, None: 1}  # the task row by its ttl; heartbeat renews no watch
    q(conn, "update pgflow.listeners set expires_at = now() - interval '1 s'")
    q(conn, "select pgflow.heartbeat(%s)", worker)  # a lapsed row is not renewed ...
    assert one(conn, "select count(*) as n from pgflow.listeners")["n"] == 0  # ... but deleted
    assert register(conn, worker, ["f"]) is False  # the worker learns it lapsed

    q(conn, "select pgflow.watch_run(%s, %s)", worker, run_id)
    assert one(conn, "select pgflow.unwatch(%s, %s) as n", worker, run_id)["n"] == 1
    q(conn, "select pgflow.watch_run(%s, %s)", worker, run_id)
    q(conn, "select pgflow.worker_stopped(%s)", worker)
    assert one(conn, "select count(*) as n from pgflow.listeners")["n"] == 0
    assert one(conn, "select pgflow.unwatch(%s) as n", uuid.uuid4())["n"] == 0


def test_expired_registrations_are_deleted_a_few_at_a_time(conn):
    q(
        conn,
        "insert into pgflow.listeners (listener_id, run_id, expires_at, ttl)"
        " select gen_random_uuid(), gen_random_uuid(), now() - interval '1 h', interval '1 m'"
        " from generate_series(1, 30)",
    )
    q(conn, "select pgflow.watch_run(%s, %s)", uuid.uuid4(), uuid.uuid4())  # 1 added, 11 go
    assert one(conn, "select count(*) as n from pgflow.listeners")["n"] == 30 - 11 + 1


@pytest.mark.parametrize(
    ("call", "params", "code"),
    [
        ("listen_tasks(%s, array['f'])", [None], "PGF08"),
        ("listen_tasks(gen_random_uuid(), array['f'], %s)", [0], "PGF08"),
        ("listen_tasks(gen_random_uuid(), array['f'], %s)", [86401], "PGF08"),
        ("listen_tasks(gen_random_uuid(), array['f'], %s)", [None], "PGF08"),
        ("listen_tasks(gen_random_uuid(), %s)", [[]], "PGF08"),
        ("listen_tasks(gen_random_uuid(), %s)", [["f"] * 1001], "PGF08"),
        ("listen_tasks(gen_random_uuid(), %s)", [["not a slug"]], "PGF01"),
        ("listen_tasks(gen_random_uuid(), %s)", [["*"]], "PGF01"),
        ("listen_tasks(gen_random_uuid(), %s)", [["f", None]], "PGF01"),
        ("watch_run(%s, gen_random_uuid())", [None], "PGF08"),
        ("watch_run(gen_random_uuid(), null, %s)", [100000], "PGF08"),
    ],
)
def test_registrations_refuse_bad_arguments(conn, call, params, code):
    with pytest.raises(psycopg.Error) as exc:
        q(conn, f"select pgflow.{call}", *params)
    assert exc.value.sqlstate == code
    assert exc.value.diag.message_hint


@pytest.mark.parametrize("role", ["pgflow_worker", "pgflow_reader"])
def test_both_roles_register_and_sync_but_cannot_write_the_table(conn, role):
    listener, run_id = uuid.uuid4(), uuid.uuid4()
    conn.execute(f"set role {role}")
    try:
        for call in (
            "listen_tasks(%(l)s, array['f'])",
            "watch_run(%(l)s, %(r)s)",
            "sync_tasks(array['f'])",
            "sync_run(%(r)s)",
            "unwatch(%(l)s)",
        ):
            conn.execute(f"select pgflow.{call}", {"l": listener, "r": run_id})
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("delete from pgflow.listeners")
    finally:
        conn.execute("reset role")


def test_a_held_key_never_blocks_notifiers_and_the_barrier_gives_up(conn, db_url):
    define(conn, "f", ("a", []))
    saturate(conn, uuid.uuid4())
    bucket = one(conn, "select hashtext('f') & 15 as b")["b"]
    with (
        listening(db_url, "pgflow_tasks") as listener,
        psycopg.connect(db_url, autocommit=True, row_factory=dict_row) as holder,
    ):
        holder.execute("select pg_advisory_lock(%s, %s)", [TASKS_KEYS, bucket])
        start(conn, "f")  # does not wait for the held key: notifies without looking
        assert notes(listener) == [("pgflow_tasks", "f")]
        holder.execute("select pg_advisory_unlock(%s, %s)", [TASKS_KEYS, bucket])
        holder.execute("select pg_advisory_lock_shared(%s, %s)", [TASKS_KEYS, bucket])
        synced = one(conn, "select pgflow.sync_tasks(array['f']) as ok")  # 2 s lock_timeout
        assert synced == {"ok": False}
        # the runs' key space is another: its barrier does not wait for that key
        assert one(conn, "select pgflow.sync_run(null) as ok") == {"ok": True}


def test_an_upgrade_with_unregistered_live_workers_keeps_every_notification_for_an_hour(
    conn, db_url
):
    (table_file,) = [sql for name, sql in schema_files() if name == "0046_table_listeners.sql"]
    registered = uuid.uuid4()
    q(conn, "select pgflow.register_worker(%s, array['f'])", registered)
    register(conn, registered)
    conn.execute(table_file)  # every migration runs the schema files again
    assert one(conn, "select count(*) as n from pgflow.listeners") == {"n": 1}  # no stand-in

    q(conn, "select pgflow.register_worker(%s, array['f'])", uuid.uuid4())  # an earlier version
    conn.execute(table_file)
    conn.execute(table_file)  # idempotent
    rows = q(
        conn,
        "select run_id, flow_slug, waiting, round(extract(epoch from expires_at - now())) as left"
        " from pgflow.listeners where listener_id = '00000000-0000-0000-0000-000000000000'"
        " order by flow_slug",
    )
    nil = uuid.UUID(int=0)
    assert rows == [
        {"run_id": None, "flow_slug": "*", "waiting": True, "left": 3600},
        {"run_id": nil, "flow_slug": None, "waiting": True, "left": 3600},
    ]
    define(conn, "f", ("a", []))
    saturate(conn, registered)
    run_id = start(conn, "f")["run_id"]
    with listening(db_url, "pgflow_tasks", f"pgflow_run_{run_id}") as listener:
        (task,) = [t for t in claim(conn, "f") if t["run_id"] == run_id]
        complete(conn, task, 1)
        start(conn, "f")
        assert {c for c, _ in notes(listener)} == {"pgflow_tasks", f"pgflow_run_{run_id}"}
