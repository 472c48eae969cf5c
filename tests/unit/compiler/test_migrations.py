"""``compile -o DIR``: one file per flow, skipped when identical, refused when changed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from pgflow import Flow
from pgflow.compiler import compile_flow
from pgflow.compiler.migrations import migration_name, write_migrations
from pgflow.errors import CompileError

NOW = datetime(2026, 11, 23, 14, 5, 9, tzinfo=UTC)


def make_flow(slug: str = "orders", *, extra_dep: bool = False) -> Flow:
    flow = Flow(slug).step("a", lambda: 1).step("b", lambda **_: 2, depends_on=["a"])
    return flow.step("c", lambda **_: 3, depends_on=["a", "b"] if extra_dep else ["b"])


def test_file_names_use_the_utc_timestamp_and_slug() -> None:
    local = NOW.astimezone(timezone(timedelta(hours=2)))
    assert migration_name("orders", local) == "20261123140509_create_orders.sql"


def test_each_flow_is_written_to_its_own_file_in_a_new_folder(tmp_path: Path) -> None:
    folder = tmp_path / "migrations"
    compiled = [compile_flow(make_flow("one")), compile_flow(make_flow("two"))]
    outcomes = write_migrations(compiled, folder, now=NOW)
    assert [(o.path.name, o.written) for o in outcomes] == [
        ("20261123140509_create_one.sql", True),
        ("20261123140509_create_two.sql", True),
    ]
    assert outcomes[0].path.read_text("utf-8") == compiled[0].sql


def test_an_identical_shape_already_in_the_folder_is_skipped(tmp_path: Path) -> None:
    first = write_migrations([compile_flow(make_flow())], tmp_path, now=NOW)
    again = write_migrations([compile_flow(make_flow())], tmp_path, now=NOW + timedelta(days=1))
    assert again[0].written is False
    assert again[0].path == first[0].path
    assert len(list(tmp_path.iterdir())) == 1


def test_a_changed_shape_is_refused_naming_the_file_checksums_and_difference(
    tmp_path: Path,
) -> None:
    (earlier,) = write_migrations([compile_flow(make_flow())], tmp_path, now=NOW)
    changed = compile_flow(make_flow(extra_dep=True))
    untouched = compile_flow(make_flow("other"))
    with pytest.raises(CompileError) as caught:
        write_migrations([untouched, changed], tmp_path, now=NOW + timedelta(days=1))
    error = caught.value
    assert str(earlier.path) in error.message
    assert changed.checksum in error.message and error.checksum_expected in error.message
    assert 'step \'c\': deps is ["b"] in the earlier migration and ["a", "b"]' in error.message
    assert "orders_v2" in (error.hint or "")
    assert sorted(p.name for p in tmp_path.iterdir()) == [earlier.path.name]  # nothing written
