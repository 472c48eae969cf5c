"""``canonical_json`` reproduces Postgres ``jsonb::text`` exactly.

Every expected string below was printed by PostgreSQL 15 for ``'<json.dumps(value)>'::jsonb::text``
(the integration test ``test_checksum_agreement`` re-checks the rule on generated values
against the server the suite runs on).
"""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any

import pytest

from pgflow.shape import canonical_json

KNOWN_POSTGRES_OUTPUT: list[tuple[Any, str]] = [
    (None, "null"),
    (True, "true"),
    (False, "false"),
    (0, "0"),
    (-7, "-7"),
    (12345678901234567890, "12345678901234567890"),
    (1.0, "1.0"),
    (1.5, "1.5"),
    (-0.0, "0.0"),
    (100.0, "100.0"),
    (0.1, "0.1"),
    (1e100, "1" + "0" * 100),
    (1e-7, "0.0000001"),
    (5e-324, "0." + "0" * 323 + "5"),
    (1.7976931348623157e308, "17976931348623157" + "0" * 292),
    (123456.789e3, "123456789.0"),
    (Decimal("1.50"), "1.50"),
    (Decimal("1E+2"), "100"),
    (Decimal("-0.00"), "0.00"),
    (Decimal("1.500E+2"), "150.0"),
    ("", '""'),
    ('q"uote', '"q\\"uote"'),
    ("back\\slash", '"back\\\\slash"'),
    ("\b\f\n\r\t", '"\\b\\f\\n\\r\\t"'),
    ("\x01\x1f\x7f", '"\\u0001\\u001f\x7f"'),
    ("żółć 🎉 日本", '"żółć 🎉 日本"'),
    ("/slash \u2028", '"/slash \u2028"'),
    ([], "[]"),
    ({}, "{}"),
    ([1, [2, []], {}], "[1, [2, []], {}]"),
    ((1, "a"), '[1, "a"]'),
    (
        {"b": 1, "a": 2, "aa": 3, "é": 4, "z": 5, "ab": 6, "B": 7, "": 8},
        '{"": 8, "B": 7, "a": 2, "b": 1, "z": 5, "aa": 3, "ab": 6, "é": 4}',
    ),
    ({"nested": {"k": [None, True, {"x": "y"}]}}, '{"nested": {"k": [null, true, {"x": "y"}]}}'),
]


@pytest.mark.parametrize(("value", "expected"), KNOWN_POSTGRES_OUTPUT)
def test_matches_what_postgres_prints(value: Any, expected: str) -> None:
    assert canonical_json(value) == expected


def test_keys_sort_by_utf8_byte_length_before_bytes() -> None:
    # "é" is one character but two UTF-8 bytes: it sorts with the two-character keys, and
    # after "zz" because 0x7a < 0xc3.
    assert canonical_json({"é": 1, "zz": 2, "abc": 3, "y": 4}) == (
        '{"y": 4, "zz": 2, "é": 1, "abc": 3}'
    )


@pytest.mark.parametrize(
    ("value", "error"),
    [
        (math.nan, ValueError),
        (math.inf, ValueError),
        (Decimal("NaN"), ValueError),
        ("nul \x00 char", ValueError),
        ("lone \ud800 surrogate", ValueError),
        ({1: "non-str key"}, ValueError),
        ({"set": {1, 2}}, TypeError),
        (object(), TypeError),
    ],
)
def test_values_jsonb_cannot_hold_are_refused(value: Any, error: type[Exception]) -> None:
    with pytest.raises(error):
        canonical_json(value)
