"""describe_conninfo: what error messages say about the server, never the password."""

from __future__ import annotations

import pytest

from pgflow.db.errors import describe_conninfo, redact


@pytest.mark.parametrize(
    "conninfo, expected",
    [
        (
            "postgresql://app:pw@db.example.com:5433/prod",
            "postgresql://app@db.example.com:5433/prod",
        ),
        ("postgresql://db.example.com/prod", "postgresql://db.example.com/prod"),
        ("host=h user=u password=pw dbname=d", "postgresql://u@h/d"),
        (
            "postgresql://postgres:@/pgflow?host=/tmp/x/.pgflow/pgdata",
            "postgresql://postgres@/pgflow?host=/tmp/x/.pgflow/pgdata",
        ),
        ("postgresql://u:pw@/d?host=/run/pg&port=5444", "postgresql://u@/d?host=/run/pg&port=5444"),
        ("dbname=only", "postgresql://localhost/only"),
    ],
)
def test_describe_conninfo(conninfo: str, expected: str) -> None:
    assert describe_conninfo(conninfo) == expected


def test_unparseable_url_is_not_echoed() -> None:
    assert describe_conninfo("not a url with password=oops =") == "<unparseable database URL>"


def test_redact_masks_passwords_in_urls_inside_text() -> None:
    text = 'bad "postgresql://app:pa55@db/x" and postgres://u:p@h'
    assert redact(text) == 'bad "postgresql://app:***@db/x" and postgres://u:***@h'
    assert redact("no url here") == "no url here"
