"""Flows that `pgflow run` / `pgflow start --wait` are interrupted in (test_cli_interrupt.py)."""

from __future__ import annotations

import asyncio
from typing import Any

from pgflow import Context, Flow

patient = Flow("interrupt_patient", timeout=60)


@patient.step()
def wait_for_cancel(input: dict[str, Any], ctx: Context) -> str:
    ctx.cancelled.sync_wait(30)  # cooperative: returns once its run is cancelled
    return "stopped"


stubborn = Flow("interrupt_stubborn", timeout=60)


@stubborn.step()
async def never_stops(input: dict[str, Any]) -> str:
    while True:  # swallows every cancellation: only a forced exit ends this process
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            pass
