"""Run one flow to completion in this process: start it, work on it, return the finished run.

This is ``pgflow run`` without the command line, and what a script or a test uses to run a
flow end to end::

    run = await run_flow(flow, {"url": "https://example.com"}, database_url=url)
    print(run.output)

The flows must be deployed already (``pgflow.deploy.deploy_flows``). An in-process
:class:`~pgflow.Worker` serves them until the run finishes; then it stops gracefully and
releases anything it still holds. Cancelling ``run_flow`` (Ctrl+C in ``pgflow run``)
cancels the run it started, so no run is left ``started`` with nobody working on it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from typing import Any

from pgflow.client import AsyncClient
from pgflow.dsl.flow import Flow
from pgflow.errors import PgflowError
from pgflow.models import Run
from pgflow.worker.worker import Worker

__all__ = ["run_flow"]

logger = logging.getLogger("pgflow.worker")


async def run_flow(
    flow: Flow,
    input: Any,
    *,
    database_url: str,
    flows: Sequence[Flow] = (),
    timeout: float | None = None,
    on_update: Callable[[Run], None] | None = None,
    on_start: Callable[[Run], None] | None = None,
    **worker_options: Any,
) -> Run:
    """Start a run of ``flow``, work on it in-process until it finishes, and return it.

    Args:
        flow: the flow to run (its input model validates ``input`` before any SQL).
        input: the run input.
        database_url: the database, with the pgflow schema and the flows deployed.
        flows: every flow the worker should serve (default: just ``flow``).
        timeout: seconds to wait for the run to finish (None: no limit).
        on_update: called with the run now and after each change (for progress output).
        on_start: called with the run as soon as it is started (before any update).
        **worker_options: passed to :class:`~pgflow.Worker` (``concurrency``, ...).

    Returns:
        The completed run.

    Raises:
        RunFailedError: the run failed (the step's error is in the message).
        RunCancelledError: someone cancelled it meanwhile.
        RunTimeoutError: it did not finish within ``timeout``.
        PgflowError: the worker stopped first (e.g. the database went away for good).
        asyncio.CancelledError: ``run_flow`` was cancelled; the run is cancelled too
            (when the database answers within 5 s).
    """
    served = list(flows) or [flow]
    if all(f is not flow for f in served):
        served.append(flow)
    worker = Worker(served, database_url, **worker_options)
    async with AsyncClient(database_url) as client:
        run = await client.start(flow, input)
        if on_start is not None:
            on_start(run)
        working = asyncio.create_task(worker.run_async(), name="pgflow run worker")
        try:
            last = await _watch(client, run, timeout, on_update, working)
        except asyncio.CancelledError:  # Ctrl+C: cancel the run, do not wait for its tasks
            await _cancel(client, run)
            worker.stop(immediate=True)
            raise
        finally:
            worker.stop()
            with contextlib.suppress(Exception):
                await working
    return last.raise_for_status()


async def _cancel(client: AsyncClient, run: Run) -> None:
    try:
        async with asyncio.timeout(5.0):
            await client.cancel(run.run_id)
    except Exception as exc:  # noqa: BLE001 - say so; the caller is being cancelled anyway
        logger.warning(
            "could not cancel run %s: %s; `pgflow cancel %s` cancels it",
            run.run_id,
            exc or type(exc).__name__,
            run.run_id,
            extra={"action": "cancel_failed", "run_id": str(run.run_id)},
        )


async def _watch(
    client: AsyncClient,
    run: Run,
    timeout: float | None,
    on_update: Callable[[Run], None] | None,
    working: asyncio.Task[None],
) -> Run:
    """Follow the run until it finishes, or fail fast when the worker stops first."""

    async def follow() -> Run:
        last = run
        async for last in client.watch(run.run_id, timeout):
            if on_update is not None:
                on_update(last)
        return last

    watching = asyncio.create_task(follow(), name="pgflow run watch")
    try:
        await asyncio.wait({watching, working}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        if not watching.done():
            watching.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watching
    if watching.cancelled():
        working.result()  # the worker's own error, if it raised one
        raise PgflowError(
            f"the worker stopped before run {run.run_id} of flow {run.flow_slug!r} finished",
            hint=f"see the log above; `pgflow status {run.run_id}` shows where it stands",
        )
    return watching.result()
