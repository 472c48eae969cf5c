"""Values by reference in the SQL core: storing, references, maps, conditions, deletion.

Every value here is at least a few KiB over a small inline limit, so nothing is slow; the
16 MiB fan-in runs through real workers in tests/integration/worker/test_large_values.py.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from typing import Any

import psycopg
import pytest
from psycopg.types.json import Jsonb

from tests.integration.sql.helpers import (
    claim,
    complete,
    define,
    one,
    q,
    run,
    start,
    states,
    tasks,
)

KIB = 1024
BIG = "x" * (80 * KIB)  # over the default inline limit of 64 KiB


def is_ref(value: Any) -> bool:
    return isinstance(value, dict) and "$pgflow_ref" in value


def finished_days_ago(conn: psycopg.Connection[Any], run_id: Any) -> None:
    q(conn, "update pgflow.runs set started_at = now() - interval '3 days', "
            "finished_at = now() - interval '2 days' where run_id = %s", run_id)  # fmt: skip


def blob_count(conn: psycopg.Connection[Any], run_id: Any = None) -> int:
    sql = "select count(*) as n from pgflow.blobs where %s::uuid is null or run_id = %s::uuid"
    return one(conn, sql, run_id, run_id)["n"]


def stored(conn: psycopg.Connection[Any], run_id: Any, ref: dict[str, Any]) -> Any:
    """The value a reference stands for, read back with read_blob."""
    rows = q(
        conn,
        "select data from pgflow.read_blob(%s, %s, 0, 1000)",
        run_id,
        uuid.UUID(ref["$pgflow_ref"]),
    )
    return json.loads(b"".join(bytes(r["data"]) for r in rows))


def seal(conn: psycopg.Connection[Any], run_id: Any, value: Any, store: str = "pg") -> Any:
    """Store a value the way clients do (put_blob_chunk, seal_blob) and return its ref."""
    data = json.dumps(value).encode()
    blob_id = uuid.uuid4()
    if store == "pg":
        for seq, start_at in enumerate(range(0, len(data), 1000)):
            q(conn, "select pgflow.put_blob_chunk(%s, %s, %s, %s)", run_id, blob_id, seq,
              data[start_at : start_at + 1000])  # fmt: skip
    return one(
        conn,
        "select pgflow.seal_blob(%s, %s, %s, %s, %s) as ref",
        run_id,
        blob_id,
        len(data),
        hashlib.sha256(data).hexdigest(),
        store,
    )["ref"]


def raises(conn: psycopg.Connection[Any], sql: str, *params: Any) -> psycopg.Error:
    with pytest.raises(psycopg.Error) as caught:
        q(conn, sql, *params)
    return caught.value


def test_the_inline_limit_is_an_owner_setting_with_a_floor(conn):
    assert one(conn, "select * from pgflow.value_limits()") == {
        "inline_limit_bytes": 64 * KIB,
        "max_payload_bytes": 16 * KIB * KIB,
    }
    error = raises(conn, "select pgflow.set_setting('inline_limit_bytes', 1023)")
    assert error.sqlstate == "PGF03" and "between 1024 and 268435455" in str(error)
    q(conn, "select pgflow.set_setting('inline_limit_bytes', 2048)")
    assert one(conn, "select * from pgflow.value_limits()")["inline_limit_bytes"] == 2048


def test_a_large_run_input_is_stored_once_and_root_tasks_get_its_reference(conn):
    define(conn, "f", ("a", []), ("b", ["a"]))
    r = start(conn, "f", {"big": BIG})
    assert is_ref(r["input"]) and r["input"]["size"] > 80 * KIB
    assert r["input_bytes"] < 300  # the state row holds the reference only
    assert stored(conn, r["run_id"], r["input"]) == {"big": BIG}
    (a,) = claim(conn, "f")
    assert a["input"] == r["input"] and a["flow_input"] == r["input"]
    doc = one(conn, "select pgflow.get_run_with_states(%s) as d", r["run_id"])["d"]
    assert doc["run"]["input"] == r["input"]


def test_a_large_output_is_stored_once_and_the_dependent_gets_its_reference(conn):
    define(conn, "f", ("a", []), ("b", ["a"]))
    r = start(conn, "f", {})
    complete(conn, claim(conn, "f")[0], {"big": BIG})
    ref = states(conn, r["run_id"])["a"]["output"]
    assert is_ref(ref) and stored(conn, r["run_id"], ref) == {"big": BIG}
    (b,) = claim(conn, "f")
    assert b["input"] == {"a": ref}
    complete(conn, b, "small")
    assert run(conn, r["run_id"])["output"] == {"b": "small"}
    assert blob_count(conn, r["run_id"]) == 1  # stored once, referenced twice


def test_a_late_large_report_stores_nothing(conn):
    define(conn, "f", ("a", []))
    start(conn, "f", {})
    (a,) = claim(conn, "f")
    complete(conn, a, {"big": BIG}, attempt=a["attempt"] + 1)  # fenced: not this attempt
    assert blob_count(conn) == 0


def test_a_forged_reference_to_another_runs_value_fails_the_attempt_alone(conn):
    define(conn, "f", ("a", []), ("b", ["a"]), max_attempts=1)
    victim = start(conn, "f", {"secret": BIG})
    attacker = start(conn, "f", {})
    tasks_by_run = {t["run_id"]: t for t in claim(conn, "f")}
    row = complete(conn, tasks_by_run[attacker["run_id"]], victim["input"])  # a copied ref
    assert row["status"] == "failed" and row["error_type"] == "InvalidReference"
    assert f"names no stored value of run {attacker['run_id']}" in row["error_message"]
    assert '"$pgflow_ref" is reserved' in row["error_message"]
    assert run(conn, attacker["run_id"])["status"] == "failed"
    # the same with an edited size, and with garbage as the id
    for forged in ({**victim["input"], "size": 1}, {"$pgflow_ref": "../../etc/passwd"}):
        other = start(conn, "f", {})
        (task,) = [t for t in claim(conn, "f") if t["run_id"] == other["run_id"]]
        assert complete(conn, task, forged)["error_type"] == "InvalidReference"
    # the victim's run is untouched and goes on
    complete(conn, tasks_by_run[victim["run_id"]], "fine")
    assert states(conn, victim["run_id"])["a"]["status"] == "completed"


def test_a_run_input_shaped_like_a_reference_is_refused_unless_it_is_one(conn):
    define(conn, "f", ("a", []))
    victim = start(conn, "f", {"secret": BIG})
    error = raises(conn, "select pgflow.start_flow('f', %s)", Jsonb(victim["input"]))
    assert error.sqlstate == "PGF08" and "looks like a reference" in str(error)
    assert '"$pgflow_ref" is reserved' in error.diag.message_hint
    # a value stored for the new run's id first (what clients do) is accepted
    rid = uuid.uuid4()
    ref = seal(conn, rid, {"big": BIG})
    r = one(conn, "select * from pgflow.start_flow('f', %s, %s)", Jsonb(ref), rid)
    assert r["input"] == ref and stored(conn, rid, ref) == {"big": BIG}
    # nested deeper, it is plain user data
    r = start(conn, "f", {"data": victim["input"]})
    assert r["input"] == {"data": victim["input"]}


def test_writing_and_sealing_refuse_what_does_not_match(conn):
    rid, blob = uuid.uuid4(), uuid.uuid4()
    q(conn, "select pgflow.put_blob_chunk(%s, %s, 0, %s)", rid, blob, b'"abc"')
    digest = hashlib.sha256(b'"abc"').hexdigest()
    wrong = raises(conn, "select pgflow.seal_blob(%s, %s, 9, %s)", rid, blob, digest)
    assert wrong.sqlstate == "PGF15" and "hold 5 bytes" in str(wrong)
    ref = one(conn, "select pgflow.seal_blob(%s, %s, 5, %s) as r", rid, blob, digest)["r"]
    assert ref == {"$pgflow_ref": str(blob), "size": 5, "sha256": digest, "store": "pg"}
    again = one(conn, "select pgflow.seal_blob(%s, %s, 5, %s) as r", rid, blob, digest)["r"]
    assert again == ref  # idempotent
    sealed = raises(conn, "select pgflow.put_blob_chunk(%s, %s, 1, %s)", rid, blob, b"x")
    assert sealed.sqlstate == "PGF15" and "sealed" in str(sealed)
    # read under another run id: nothing, whatever the blob id
    other = raises(conn, "select * from pgflow.read_blob(%s, %s)", uuid.uuid4(), blob)
    assert other.sqlstate == "PGF15" and "has no stored value" in str(other)
    q(conn, "select pgflow.set_setting('max_payload_bytes', 4)")
    big = raises(conn, "select pgflow.seal_blob(%s, %s, 5, %s)", rid, uuid.uuid4(), digest)
    assert big.sqlstate == "PGF08" and "over the limit of 4 bytes" in str(big)


def test_a_root_map_hands_each_task_its_element_only(conn):
    define(conn, "m", ("each", [], {"step_type": "map"}))
    elements = [{"n": i, "pad": "p" * 100} for i in range(1000)]  # 120 KiB: stored
    r = start(conn, "m", elements)
    assert is_ref(r["input"])
    got = claim(conn, "m", 5)
    assert [t["input"] for t in got] == elements[:5]
    assert all(t["flow_input"] is None for t in got)
    first = got[0]
    key = (first["run_id"], "each", first["task_index"])
    served = one(conn, "select pgflow.task_flow_input(%s, %s, %s, %s) as v", *key, 1)["v"]
    assert served == r["input"]  # the reference: the worker fetches the value itself
    stale = raises(conn, "select pgflow.task_flow_input(%s, %s, %s, %s)", *key, 2)
    assert stale.sqlstate == "PGF15" and "not leased to attempt 2" in str(stale)


def test_large_map_elements_are_stored_and_aggregated_as_references(conn):
    define(conn, "m", ("each", [], {"step_type": "map"}), ("after", ["each"]))
    r = start(conn, "m", [BIG, "small", BIG])
    got = sorted(claim(conn, "m", 5), key=lambda t: t["task_index"])
    assert [is_ref(t["input"]) for t in got] == [True, False, True]
    assert stored(conn, r["run_id"], got[0]["input"]) == BIG
    for task in got:
        complete(conn, task, task["input"] if task["task_index"] != 1 else BIG + "!")
    aggregated = states(conn, r["run_id"])["each"]["output"]
    assert [is_ref(v) for v in aggregated] == [True, True, True]
    assert stored(conn, r["run_id"], aggregated[1]) == BIG + "!"
    (after,) = claim(conn, "m")
    assert after["input"] == {"each": aggregated}


def test_a_map_splits_an_array_stored_by_reference(conn):
    define(conn, "m", ("make", []), ("each", ["make"], {"step_type": "map"}))
    r = start(conn, "m", {})
    elements = [f"element {i} " + "y" * 100 for i in range(1000)]
    complete(conn, claim(conn, "m")[0], elements)
    assert is_ref(states(conn, r["run_id"])["make"]["output"])
    got = claim(conn, "m", 1000)
    assert sorted((t["task_index"], t["input"]) for t in got) == list(enumerate(elements))


def test_a_condition_sees_through_references(conn):
    define(conn, "c", ("a", []), ("b", ["a"], {"required_input_pattern": {"a": {"go": True}}}),
           ("d", ["a"], {"required_input_pattern": {"a": {"go": False}}}))  # fmt: skip
    r = start(conn, "c", {})
    complete(conn, claim(conn, "c")[0], {"go": True, "pad": BIG})
    st = states(conn, r["run_id"])
    assert is_ref(st["a"]["output"])
    assert st["b"]["status"] == "started" and st["d"]["status"] == "skipped"


def test_sql_fails_the_step_that_needs_a_value_it_cannot_read(conn):
    define(conn, "m", ("make", []), ("each", ["make"], {"step_type": "map"}), max_attempts=1)
    r = start(conn, "m", {})
    (make,) = claim(conn, "m")
    ref = seal(conn, r["run_id"], list(range(10)), store="fs")  # bytes outside Postgres
    complete(conn, make, ref)
    got = run(conn, r["run_id"])
    assert got["status"] == "failed"
    assert "ValueUnavailable: map step 'each' cannot split its array" in got["error_message"]
    assert "keep arrays that maps split in the 'pg' store" in got["error_message"]


def test_map_elements_shaped_like_references_must_be_this_runs(conn):
    define(conn, "m", ("each", [], {"step_type": "map"}))
    victim = start(conn, "m", [BIG])
    stolen = claim(conn, "m")[0]["input"]
    assert is_ref(stolen)
    r = start(conn, "m", ["fine", stolen])
    got = run(conn, r["run_id"])
    assert got["status"] == "failed"
    assert "InvalidReference: map step 'each': element 1" in got["error_message"]
    assert states(conn, victim["run_id"])["each"]["status"] == "started"


def test_a_reference_over_the_payload_limit_fails_the_attempt(conn):
    define(conn, "f", ("a", []))
    r = start(conn, "f", {})
    (a,) = claim(conn, "f")
    ref = seal(conn, r["run_id"], BIG)
    q(conn, "select pgflow.set_setting('max_payload_bytes', 10000)")
    row = complete(conn, a, ref)
    assert row["error_type"] == "OutputTooLarge"
    assert "over the limit of 10000 bytes (setting max_payload_bytes)" in row["error_message"]


def test_prune_retention_and_delete_remove_values_and_tombstone_external_ones(conn):
    define(conn, "f", ("a", []), retention="1 day")
    runs = [start(conn, "f", {"big": BIG, "n": i}) for i in range(3)]
    for task in claim(conn, "f", 3):
        complete(conn, task, seal(conn, task["run_id"], {"out": BIG}, store="fs"))
    assert blob_count(conn) == 6
    chunks = "select count(*) as n from pgflow.blob_chunks"
    assert one(conn, chunks)["n"] > 0
    finished_days_ago(conn, runs[0]["run_id"])
    assert one(conn, "select pgflow.prune('1 day') as n")["n"] == 1
    assert blob_count(conn, runs[0]["run_id"]) == 0 and blob_count(conn) == 4
    tomb = q(conn, "select * from pgflow.blob_tombstones('fs')")
    assert [t["run_id"] for t in tomb] == [runs[0]["run_id"]]
    finished_days_ago(conn, runs[1]["run_id"])
    assert one(conn, "select pgflow.apply_retention() as n")["n"] == 1
    assert blob_count(conn) == 2
    q(conn, "select pgflow.delete_flow_and_data('f')")
    assert blob_count(conn) == 0 and one(conn, chunks)["n"] == 0
    tomb = q(conn, "select * from pgflow.blob_tombstones('fs', 10)")
    assert {t["run_id"] for t in tomb} == {r["run_id"] for r in runs}
    forgotten = one(conn, "select pgflow.forget_blob_tombstones('fs', %s, %s) as n",
                    [t["run_id"] for t in tomb], [t["blob_id"] for t in tomb])  # fmt: skip
    assert forgotten["n"] == 3 and q(conn, "select * from pgflow.blob_tombstones('fs')") == []


def test_values_of_other_runs_survive_a_prune(conn):
    define(conn, "f", ("a", []))
    keep = start(conn, "f", {"big": BIG})
    old = start(conn, "f", {"big": BIG})
    for task in claim(conn, "f", 2):
        complete(conn, task, "done")
    finished_days_ago(conn, old["run_id"])
    q(conn, "select pgflow.prune('1 day')")
    assert blob_count(conn, keep["run_id"]) == 1
    assert stored(conn, keep["run_id"], keep["input"]) == {"big": BIG}
    assert all(t["status"] == "completed" for t in tasks(conn, keep["run_id"]))
