"""References (where they may stand, how they are read) and the filesystem store, offline."""

from __future__ import annotations

import hashlib
import uuid
from pathlib import Path

import pytest

from pgflow.blobs import BlobKey, BlobStore, FilesystemStore, PostgresStore
from pgflow.blobs.refs import ELEMENTS, VALUE, Places, collect, is_ref, parse_ref, substitute
from pgflow.blobs.values import Stores, decode_exact
from pgflow.cli._preview import marker_label, preview
from pgflow.errors import ConfigurationError, InputDecodeError, ValueMissingError, ValueStoreError


def ref(n: int, store: str = "pg") -> dict[str, object]:
    return {"$pgflow_ref": str(uuid.UUID(int=n)), "size": n, "sha256": "a" * 64, "store": store}


def test_references_are_found_only_where_pgflow_puts_them() -> None:
    deep = {"user": {"$pgflow_ref": "x"}}  # user data: never a reference
    assert [r.size for r in collect(ref(1), VALUE)] == [1]
    assert collect(deep, VALUE) == []
    assert [r.size for r in collect([ref(1), "x", ref(2), deep], ELEMENTS)] == [1, 2]
    members = {"single": ref(3), "mapped": [ref(4), 5, deep], "plain": [ref(6)], "x": deep}
    found = collect(members, Places("members", frozenset({"mapped"})))
    assert [r.size for r in found] == [3, 4]  # "plain" is a single step's list: user data
    values = {uuid.UUID(int=n): f"value {n}" for n in (3, 4)}
    assert substitute(members, Places("members", frozenset({"mapped"})), values) == {
        "single": "value 3",
        "mapped": ["value 4", 5, deep],
        "plain": [ref(6)],
        "x": deep,
    }


@pytest.mark.parametrize(
    "bad",
    [
        {"$pgflow_ref": "../../etc/passwd", "size": 1, "sha256": "a" * 64},
        {**ref(1), "size": -1},
        {**ref(1), "size": True},
        {**ref(1), "sha256": "A" * 64},
        {**ref(1), "store": "../up"},
        {"$pgflow_ref": str(uuid.uuid4())},
    ],
)
def test_a_malformed_reference_is_refused(bad: dict[str, object]) -> None:
    assert is_ref(bad)
    with pytest.raises(ValueStoreError, match="is not a valid reference"):
        parse_ref(bad)


def test_a_filesystem_store_round_trips_and_deletes(tmp_path: Path) -> None:
    store = FilesystemStore(tmp_path / "v")
    assert isinstance(store, BlobStore) and isinstance(PostgresStore(lambda: None), BlobStore)  # type: ignore[arg-type,return-value]
    key = BlobKey(uuid.uuid4(), uuid.uuid4())
    store.put(key, memoryview(b'"hello"'))
    assert bytes(store.get(key, 7)) == b'"hello"'
    assert list((tmp_path / "v" / str(key.run_id)).iterdir()) == [
        tmp_path / "v" / str(key.run_id) / str(key.blob_id)
    ]  # no temporary file left behind
    store.delete([key, BlobKey(key.run_id, uuid.uuid4())])  # an absent key is skipped
    assert not (tmp_path / "v" / str(key.run_id)).exists()
    with pytest.raises(ValueMissingError, match="is not in store 'fs'"):
        store.get(key, 7)


@pytest.mark.parametrize("name", ["pg", "", "Fs", "1fs", "f-s", "x" * 33, 7])
def test_store_names_must_fit_in_references(name: object) -> None:
    with pytest.raises(ConfigurationError, match="cannot name a value store"):
        FilesystemStore("/tmp", name=name)  # type: ignore[arg-type]


def test_a_reader_without_the_store_is_told_which_to_pass(tmp_path: Path) -> None:
    parsed = parse_ref(ref(1, store="archive"))
    key = BlobKey(uuid.uuid4(), parsed.blob_id)
    with pytest.raises(ValueStoreError, match="pass blob_store= a store named 'archive'"):
        Stores(FilesystemStore(tmp_path, name="fs")).reader(parsed, key)
    assert Stores(FilesystemStore(tmp_path, name="archive")).reader(parsed, key) is not None
    assert Stores().reader(parse_ref(ref(1)), key) is None  # pg: the caller's connection


def test_values_are_decoded_exactly_or_refused_with_a_reason() -> None:
    assert decode_exact("[12345678901234567890123]") == [12345678901234567890123]
    with pytest.raises(InputDecodeError, match="nested too deeply"):
        decode_exact("[" * 100_000 + "]" * 100_000)


def test_previews_show_references_with_their_size() -> None:
    large = {"$pgflow_ref": str(uuid.uuid4()), "size": 16 * 1024 * 1024, "sha256": "0" * 64}
    assert marker_label(large) == "<stored: 16.0 MiB>"
    assert preview({"a": large, "b": [large, 1]}) == (
        '{"a": <stored: 16.0 MiB>, "b": [<stored: 16.0 MiB>, 1]}'
    )
    assert hashlib.sha256(b"").hexdigest()  # (the digest format references carry)
