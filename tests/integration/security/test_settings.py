"""Limits belong to the database owner: no pgflow role can change a setting."""

from __future__ import annotations

import psycopg
import pytest

from tests.integration.security.conftest import Login
from tests.integration.sql.helpers import one

MIB = 1024 * 1024


def test_only_the_owner_can_change_a_setting(conn: psycopg.Connection, login: Login) -> None:
    for role in ("pgflow_worker", "pgflow_reader"):
        with psycopg.connect(login(role), autocommit=True) as caller:
            for statement in (
                "select pgflow.set_setting('max_payload_bytes', 268435455)",
                "update pgflow.settings set value = 268435455",
                "delete from pgflow.settings",
            ):
                with pytest.raises(psycopg.errors.InsufficientPrivilege):
                    caller.execute(statement)
    assert one(conn, "select pgflow._max_payload_bytes() as v")["v"] == 16 * MIB
