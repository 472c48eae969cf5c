"""with_handlers: a copy of a flow with fakes is the same flow to the database."""

from __future__ import annotations

import pytest

from pgflow import Context, Flow
from pgflow.compiler import compile_flow
from pgflow.errors import DefinitionError
from pgflow.testing import with_handlers

flow = Flow("fakeable", input=list[str], max_attempts=5, base_delay=3, timeout=20)


@flow.map(timeout=7)
def each(item: str) -> int:
    return len(item)


@flow.array(depends_on=[each], start_delay=30)
def kept(each: list[int]) -> list[int]:
    return [n for n in each if n]


@flow.step(depends_on=[kept], if_={"kept": [1]}, when_unmet="skip", max_attempts=2)
def ones(kept: list[int], ctx: Context) -> int:
    return len(kept)


@flow.step(depends_on=[each, ones], when_exhausted="skip")
async def total(each: list[int], ones: int | None = None) -> int:
    return sum(each)


def test_the_copy_compiles_to_the_same_sql_and_runs_the_fakes() -> None:
    def fake_each(item: str) -> int:
        return 0

    async def fake_total(**_: object) -> int:
        return -1

    copy = with_handlers(flow, {each: fake_each, "total": fake_total})
    assert copy is not flow and copy.slug == flow.slug
    assert compile_flow(copy).sql == compile_flow(flow).sql
    assert [s.handler for s in copy.steps] == [fake_each, kept, ones, fake_total]
    assert copy.get_step("total").is_async
    assert [s.handler for s in flow.steps] == [each, kept, ones, total]  # unchanged
    assert with_handlers(flow, {}) is flow


def test_a_fake_must_accept_what_a_skippable_dependency_may_not_send() -> None:
    def strict_total(each: list[int], ones: int) -> int:
        return 0

    with pytest.raises(DefinitionError, match="dependency 'ones' may be skipped"):
        with_handlers(flow, {"total": strict_total})


def test_a_fake_that_is_not_callable_is_refused() -> None:
    with pytest.raises(DefinitionError, match="the handler must be callable"):
        with_handlers(flow, {"total": 3})  # type: ignore[dict-item]
