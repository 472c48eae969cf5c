"""Flows whose handlers misbehave, one flow per misbehaviour (see test_bad_handlers.py).

Each flow has one step, two attempts and a 1-second timeout, so a misbehaving handler
fails its run quickly and cannot take a well-behaved run down with it.
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

from pgflow import Context, Flow

OPTIONS: dict[str, Any] = {"max_attempts": 2, "base_delay": 0, "timeout": 1}
HUGE_BYTES = 200_000  # over the 64 kB max_payload_bytes setting the test sets


def flow(slug: str) -> Flow:
    return Flow(f"bad_{slug}", **OPTIONS)


hangs = flow("hangs")


@hangs.step()
async def forever(input: Any) -> str:
    await asyncio.sleep(3600)  # the worker cancels it when the timeout passes
    return "never"


hangs_sync = flow("hangs_sync")


@hangs_sync.step()
def forever_sync(input: Any, ctx: Context) -> str:
    while not ctx.shutdown.is_set():  # cooperative: returns once told to stop
        time.sleep(0.02)
    return "stopped"


ignores_timeout = flow("ignores_timeout")


@ignores_timeout.step()
def stubborn(input: Any) -> str:
    time.sleep(4)  # ignores ctx.shutdown: its thread outlives the 1 s timeout
    return "late"


raises = flow("raises")


@raises.step()
def boom(input: Any) -> str:
    raise ValueError("boom from the handler")


exits = flow("exits")


@exits.step()
async def sys_exit(input: Any) -> str:
    raise SystemExit(3)


exits_sync = flow("exits_sync")


@exits_sync.step()
def sys_exit_sync(input: Any) -> str:
    raise SystemExit(4)


interrupts = flow("interrupts")


@interrupts.step()
def keyboard(input: Any) -> str:
    raise KeyboardInterrupt  # from a sync handler's thread it cannot be a real Ctrl-C


cancels = flow("cancels")


@cancels.step()
async def self_cancel(input: Any) -> str:
    raise asyncio.CancelledError


not_json = flow("not_json")


@not_json.step()
def an_object(input: Any) -> Any:
    return object()


nan = flow("nan")


@nan.step()
def not_a_number(input: Any) -> float:
    return float("nan")


huge = flow("huge")


@huge.step()
def big(input: Any) -> str:
    return os.urandom(HUGE_BYTES // 2).hex()  # random, so compression cannot shrink it


never_returns = flow("never_returns")


@never_returns.step()
def blocked(input: Any) -> str:
    time.sleep(600)  # stuck in a call that ignores ctx.shutdown, e.g. a socket read
    return "never"


fine = flow("fine")


@fine.step()
def ok(input: Any) -> str:
    return "fine"


FLOWS = (hangs, hangs_sync, ignores_timeout, raises, exits, exits_sync, interrupts, cancels,
         not_json, nan, huge, never_returns, fine)  # fmt: skip
