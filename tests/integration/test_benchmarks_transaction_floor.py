"""The transaction-floor benchmark's parts on a real database (benchmarks/transaction_floor.py):
each kind runs the transactions it counts, and the SQL API kind finishes every run."""

from __future__ import annotations

import psycopg
import pytest
from psycopg import sql

transaction_floor = pytest.importorskip("benchmarks.transaction_floor")  # a source checkout


def _one(url: str, query: sql.SQL | sql.Composed) -> int:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(query).fetchone()
    assert row is not None
    return int(row[0])


def _measure(url: str, kind: str, n: int) -> tuple[float, float, int]:
    try:
        result: tuple[float, float, int] = transaction_floor.measure(url, kind, n)
    except FileNotFoundError:  # the server's /proc is not this machine's
        pytest.skip("needs the test server on this machine (server CPU from /proc)")
    return result


def test_three_updates_change_one_row_of_each_table_per_transaction(db_url: str) -> None:
    transaction_floor.prepare(db_url, 30)
    cpu, wall, done = _measure(db_url, "three updates", 20)
    assert done == 20 and cpu >= 0 and wall > 0
    for table in ("task", "step", "run"):
        # ids 1-10 by the connection's first round, then 1-20 by the measured one
        name = sql.Identifier("floor", table)
        assert _one(db_url, sql.SQL("select sum(n) from {}").format(name)) == 30
        assert _one(db_url, sql.SQL("select count(*) from {} where n > 0").format(name)) == 20


def test_the_sql_api_kind_completes_every_run_it_starts(db_url: str) -> None:
    transaction_floor.prepare(db_url, 30)
    _, _, done = _measure(db_url, "complete_task", 25)
    assert done == 25
    completed = sql.SQL("select count(*) from pgflow.runs where status = 'completed'")
    assert _one(db_url, completed) == 35  # 10 by the connection's first round
    open_tasks = sql.SQL("select count(*) from pgflow.step_tasks where status <> 'completed'")
    assert _one(db_url, open_tasks) == 0


def test_the_read_kind_runs_the_transactions_it_counts(db_url: str) -> None:
    transaction_floor.prepare(db_url, 5)
    cpu, wall, done = _measure(db_url, "read", 50)
    assert done == 50 and cpu >= 0 and wall > 0


def test_function_times_count_the_pgflow_functions_each_completion_calls(db_url: str) -> None:
    transaction_floor.prepare(db_url, 30)
    times = {t.name: t for t in transaction_floor.function_times(db_url, "complete_task", 25)}
    assert times["complete_task"].calls == 1  # one per transaction, the measured ones only
    assert times["complete_tasks"].calls == 1
    assert 0 < times["claim_tasks"].calls < 1  # claims of 10 are shared by their tasks
    outer, inner = times["complete_task"], times["complete_tasks"]
    assert outer.total_us >= inner.total_us >= inner.self_us > 0
    assert list(times.values()) == sorted(times.values(), key=lambda t: -t.self_us)
