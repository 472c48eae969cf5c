"""Fixtures for the bad-input tests: a deployed flow and a fingerprint of every table."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import psycopg
import pytest
from psycopg import sql
from pydantic import BaseModel, Field

from pgflow import Flow
from pgflow.deploy import deploy_flows
from tests.integration.runtime import aclient, client, deploy, workers

__all__ = ["aclient", "client", "deploy", "workers"]


class Order(BaseModel):
    """The input model of the ``orders`` flow."""

    order_id: int = Field(ge=1)
    email: str


orders = Flow("orders", input=Order)


@orders.step()
def confirm(input: Order) -> str:
    return f"confirmed {input.order_id}"


untyped = Flow("untyped").step("echo", lambda input: input)

Snapshot = Callable[[], dict[str, Any]]


@pytest.fixture
def deployed(db_url: str) -> str:
    with psycopg.connect(db_url, autocommit=True) as conn:
        deploy_flows(conn, [orders, untyped], dev=True)
    return db_url


@pytest.fixture
def snapshot(db_url: str) -> Snapshot:
    """Every row of every pgflow table (as text), to prove a refusal wrote nothing."""

    def take() -> dict[str, Any]:
        with psycopg.connect(db_url, autocommit=True) as conn:
            tables = [
                r[0]
                for r in conn.execute(
                    "select tablename from pg_tables where schemaname = 'pgflow' order by 1"
                )
            ]
            rows = {}
            for table in tables:
                query = sql.SQL("select t::text from pgflow.{} t order by 1").format(
                    sql.Identifier(table)
                )
                rows[table] = [r[0] for r in conn.execute(query)]
            return rows

    return take
