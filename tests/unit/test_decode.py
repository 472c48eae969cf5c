"""Decoding JSON cells: the worker's loader and the readers' loader never raise."""

from __future__ import annotations

import json
import random

import pytest
from psycopg.types.json import JsonbLoader

from pgflow._decode import Undecodable, _ReadingLoader, _TaskValueLoader

DEEP = b"[" * 5000 + b"]" * 5000
LONG_NUMBER = b'{"n": ' + b"7" * 5001 + b"}"
JSONB_OID = 3802


def task_value(data: bytes) -> object:
    return _TaskValueLoader(JSONB_OID).load(memoryview(data))


def reading(data: bytes) -> object:
    return _ReadingLoader(JSONB_OID).load(memoryview(data))


def samples() -> list[bytes]:
    rng = random.Random(7)
    values: list[object] = [
        {"url": "https://example.com", "n": 3, "tags": ["a", "é", "😀"], "none": None},
        [0.1, -0.0, 1e-300, 1.7976931348623157e308, 2**64 + 1, -(10**4299), True, False],
        '\u0000\\"\n',
        [[[[[[]]]]]],
    ]
    values += [rng.uniform(-1, 1) * 10 ** rng.randint(-300, 300) for _ in range(2000)]
    return [json.dumps(v).encode() for v in values]


def test_both_loaders_decode_like_the_standard_library() -> None:
    default = JsonbLoader(JSONB_OID)
    for data in samples():
        expected = default.load(data)
        for got in (task_value(data), reading(data)):
            assert got == expected and repr(got) == repr(expected), data


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (DEEP, "it is nested too deeply for Python's JSON decoder"),
        (LONG_NUMBER, "a number in it is too long for Python (exceeds the limit (4300 digits)"),
    ],
)
def test_the_task_loader_returns_undecodable(data: bytes, reason: str) -> None:
    value = task_value(data)
    assert isinstance(value, Undecodable) and value.size == len(data)
    assert value.reason.startswith(reason), value.reason


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (DEEP, "it is nested more than 200 levels deep"),
        (b"[" * 300 + b"]" * 300, "it is nested more than 200 levels deep"),
        (LONG_NUMBER, "a number in it has more than 4300 digits"),
        (b"1" * 5001 + b".5", "a number in it has more than 4300 digits"),
    ],
)
def test_the_reading_loader_returns_the_marker(data: bytes, reason: str) -> None:
    assert reading(data) == {"$undecodable": True, "reason": reason, "bytes": len(data)}


def test_a_value_that_looks_like_a_marker_is_just_a_value_to_the_worker() -> None:
    data = b'{"$undecodable": true, "reason": "mine", "bytes": 1}'
    assert task_value(data) == json.loads(data)
