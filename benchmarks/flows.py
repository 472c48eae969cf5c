"""The benchmark flows, with empty handlers, and what each step outputs.

- ``bench_single``: one step (the independent and latency workloads);
- ``bench_chain``: ten steps, each depending on the one before;
- ``bench_diamond``: ``root`` → ``p0`` … ``p7`` in parallel → ``join``;
- ``bench_fanout``: ``items`` (an array of ``input["n"]`` integers) → ``each`` (a map over
  it) → ``total``;
- ``bench_warmup``: ``a`` → ``b``, worked before a drain's clock starts, by each layer's own
  SQL on each connection it will use (:mod:`benchmarks.warmup`); never by handlers.

Handlers do nothing but count themselves (:func:`count_task`), so the Worker layer knows
when the work it was given has been handed to it. The SQL-core loop produces the same
outputs with :func:`core_output`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import psycopg

from pgflow import Flow
from pgflow.deploy import deploy_flows

__all__ = [
    "CHAIN_LENGTH",
    "DIAMOND_WIDTH",
    "FLOWS",
    "START_RUNS",
    "WARMUP",
    "core_output",
    "count_task",
    "deploy",
    "set_counter",
]

CHAIN_LENGTH = 10
DIAMOND_WIDTH = 8
START_RUNS = "select count(pgflow.start_flow(%s, '{}')) from generate_series(1, %s)"
"""Start N runs of a flow with the input ``{}``, in one statement: ``[flow_slug, n]``."""

_counter: Callable[[int], object] | None = None


def set_counter(counter: Callable[[int], object] | None) -> None:
    """Install the callback every handler calls once (per process)."""
    global _counter
    _counter = counter


def count_task() -> None:
    """Count one handler call."""
    if _counter is not None:
        _counter(1)


async def _noop(**_: Any) -> None:
    count_task()


async def _items(input: dict[str, int]) -> list[int]:
    count_task()
    return list(range(input["n"]))


async def _each(item: int) -> None:
    count_task()


def _chain() -> Flow:
    flow = Flow("bench_chain")
    previous: list[str] = []
    for i in range(CHAIN_LENGTH):
        slug = f"s{i:02d}"
        flow.step(slug, _noop, depends_on=previous)
        previous = [slug]
    return flow


def _diamond() -> Flow:
    flow = Flow("bench_diamond").step("root", _noop)
    middle = [f"p{i}" for i in range(DIAMOND_WIDTH)]
    for slug in middle:
        flow.step(slug, _noop, depends_on=["root"])
    return flow.step("join", _noop, depends_on=middle)


def _fanout() -> Flow:
    return (
        Flow("bench_fanout")
        .array("items", _items)
        .map("each", _each, array="items")
        .step("total", _noop, depends_on=["each"])
    )


async def _warm(**_: Any) -> None:
    """Never called: warm-up tasks are claimed and completed by SQL."""


WARMUP = Flow("bench_warmup").step("a", _warm).step("b", _warm, depends_on=["a"])

FLOWS: dict[str, Flow] = {
    flow.slug: flow
    for flow in (Flow("bench_single").step("task", _noop), _chain(), _diamond(), _fanout())
}


def core_output(flow_slug: str, step_slug: str, task_input: Any) -> Any:
    """What the SQL-core loop reports for a task: the same as the empty handlers return."""
    if flow_slug == "bench_fanout" and step_slug == "items":
        return list(range(task_input["n"]))
    return None


def deploy(url: str) -> None:
    """Install the pgflow schema and deploy the benchmark flows."""
    from pgflow.db.schema import install

    install(url)
    with psycopg.connect(url, autocommit=True) as conn:
        deploy_flows(conn, [*FLOWS.values(), WARMUP])
