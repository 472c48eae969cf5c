"""Bad input through the client and the SQL API: a clear pgflow error, nothing written.

Each test fingerprints every pgflow table before and after (``snapshot``), so a refusal
that left a half-written run, step state or task behind would fail.
"""

from __future__ import annotations

import os
import uuid
from typing import Any

import psycopg
import pytest
from psycopg.types.json import Jsonb

from pgflow import (
    Client,
    ConfigurationError,
    InvalidInputError,
    PgflowError,
    UnknownFlowError,
    UnknownRunError,
    Worker,
)
from tests.integration.badinput.conftest import Snapshot, orders


def nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = {"a": value}
    return value


def circular() -> dict[str, Any]:
    loop: dict[str, Any] = {}
    loop["self"] = loop
    return loop


INPUT_IDS = ["model-range", "model-missing", "model-type", "object", "bytes", "circular"]
INPUT_IDS += ["deep", "huge-int"]


@pytest.mark.parametrize(
    ("flow", "payload", "fragment"),
    [
        (orders, {"order_id": 0, "email": "a@b.c"}, "invalid input for flow 'orders'"),
        (orders, {"email": "a@b.c"}, "order_id"),
        (orders, "not an object", "invalid input for flow 'orders'"),
        ("untyped", object(), "cannot be turned into JSON"),
        ("untyped", {"blob": b"\xff\xfe"}, "cannot be turned into JSON"),
        ("untyped", circular(), "cannot be turned into JSON"),
        ("untyped", nested(1000), "cannot be turned into JSON"),
        ("untyped", {"n": 10**5000}, "cannot be turned into JSON"),
    ],
    ids=INPUT_IDS,
)
def test_invalid_run_input_is_refused_before_any_sql(
    deployed: str, snapshot: Snapshot, flow: Any, payload: Any, fragment: str
) -> None:
    before = snapshot()
    with Client(deployed) as client, pytest.raises(InvalidInputError) as caught:
        client.start(flow, payload)
    assert fragment in str(caught.value)
    assert caught.value.hint
    assert snapshot() == before


def test_unknown_slugs_and_run_ids(deployed: str, snapshot: Snapshot) -> None:
    before = snapshot()
    with Client(deployed) as client:
        with pytest.raises(UnknownFlowError, match="unknown flow 'nope'"):
            client.start("nope", {})
        for bad in (uuid.uuid4(), "not-a-uuid", "", "'; drop table pgflow.runs; --"):
            with pytest.raises(UnknownRunError):
                client.get_run(bad)
            with pytest.raises(UnknownRunError):
                client.cancel(bad)
        with pytest.raises(UnknownRunError, match="is not a run id"):
            client.start("untyped", {}, run_id="'; drop table pgflow.runs; --")
        taken = client.start("untyped", {"x": 1})
        mid = snapshot()
        with pytest.raises(InvalidInputError, match="already exists for flow 'untyped'"):
            client.start(orders, {"order_id": 1, "email": "a@b.c"}, run_id=taken.run_id)
        assert snapshot() == mid
    assert before != mid  # the one accepted start above did write


def test_oversized_input_is_refused_with_the_documented_limit(
    deployed: str, snapshot: Snapshot
) -> None:
    with psycopg.connect(deployed, autocommit=True) as conn:
        conn.execute("select pgflow.set_setting('max_payload_bytes', 1000)")
        big = os.urandom(1000).hex()
        before = snapshot()
        with Client(connection=conn) as client, pytest.raises(InvalidInputError) as caught:
            client.start("untyped", {"big": big})
        assert "over the limit of 1000 bytes" in str(caught.value)
        assert "set_setting('max_payload_bytes'" in str(caught.value)
        assert snapshot() == before
        small = Client(connection=conn).start("untyped", {"small": "x"})
        assert small.status == "started"


INJECTIONS = [
    "x'); drop table pgflow.runs; --",
    'x"; drop table pgflow.runs; --',
    "$$; drop table pgflow.runs; $$",
    "x\\'; select pg_sleep(10); --",
    "robert'); delete from pgflow.flows where ('1'='1",
]


@pytest.mark.parametrize("slug", INJECTIONS)
def test_slugs_crafted_to_inject_sql_are_refused_by_every_function(
    deployed: str, snapshot: Snapshot, slug: str
) -> None:
    before = snapshot()
    with psycopg.connect(deployed, autocommit=True) as conn:
        calls = [
            ("select pgflow.create_flow(%s)", [slug], "PGF01"),
            ("select pgflow.add_step('untyped', %s)", [slug], "PGF01"),
            ("select pgflow.add_step(%s, 'a')", [slug], "PGF02"),
            ("select pgflow.start_flow(%s, '{}')", [slug], "PGF02"),
            ("select pgflow.get_flow_shape(%s)", [slug], "PGF02"),
            ("select pgflow.add_step('untyped', 'b', array[%s])", [slug], "PGF03"),
        ]
        for statement, params, sqlstate in calls:
            with pytest.raises(psycopg.Error) as caught:
                conn.execute(statement, params)
            assert caught.value.sqlstate == sqlstate, (statement, caught.value)
        conn.execute("select pgflow.delete_flow_and_data(%s)", [slug])  # unknown: a no-op
        assert conn.execute("select pgflow.claim_tasks(array[%s], %s)", [slug, uuid.uuid4()])
    with Client(deployed) as client, pytest.raises(UnknownFlowError):
        client.start(slug, {})
    assert snapshot() == before


def test_options_of_the_wrong_type_or_range_change_nothing(
    deployed: str, snapshot: Snapshot
) -> None:
    before = snapshot()
    with psycopg.connect(deployed, autocommit=True) as conn:
        for statement, params in [
            ("select pgflow.add_step('untyped', 'b', timeout => %s)", ["abc"]),
            ("select pgflow.add_step('untyped', 'b', timeout => %s::int)", [0]),
            ("select pgflow.add_step('untyped', 'b', max_attempts => %s::int)", [-1]),
            ("select pgflow.add_step('untyped', 'b', step_type => %s)", ["fan"]),
            ("select pgflow.add_step('untyped', 'b', when_unmet => %s)", ["ignore"]),
            ("select pgflow.add_step('untyped', 'b', required_input_pattern => %s)", [Jsonb([1])]),
            ("select pgflow.create_flow('fresh', base_delay => %s::int)", [-5]),
            ("select pgflow.create_flow('fresh', timeout => %s)", [2**40]),
        ]:
            with pytest.raises(psycopg.Error) as caught:
                conn.execute(statement, params)
            assert caught.value.sqlstate is not None
            # pgflow's own check, a data error, or no function taking that type
            assert caught.value.sqlstate.startswith(("PGF", "22", "42883")), caught.value
    with Client(deployed) as client:
        with pytest.raises(InvalidInputError):
            client.runs(limit="5")  # type: ignore[arg-type]
        with pytest.raises(InvalidInputError):
            client.runs(status="done")
    bad_settings: list[dict[str, Any]] = [
        {"concurrency": "3"},
        {"concurrency": 0},
        {"poll_interval": -1},
        {"batch_size": 2.5},
        {"shutdown_grace": "soon"},
    ]
    for options in bad_settings:
        with pytest.raises(ConfigurationError):
            Worker([orders], deployed, **options)
    assert snapshot() == before


def test_every_refusal_is_a_pgflow_error_with_a_hint(deployed: str) -> None:
    with Client(deployed) as client:
        for call in (
            lambda: client.start("nope", {}),
            lambda: client.get_run("nope"),
            lambda: client.start(orders, {}),
            lambda: client.start("untyped", circular()),
        ):
            with pytest.raises(PgflowError) as caught:
                call()
            assert caught.value.hint, caught.value
            assert "Traceback" not in str(caught.value)
