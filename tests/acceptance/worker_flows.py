"""Flows served by real `pgflow worker` processes in test_worker_processes.py."""

from __future__ import annotations

import time

from pgflow import Context, Flow

sleepy = Flow("sleepy", timeout=30)


@sleepy.step()
def nap(input: dict[str, float], ctx: Context) -> str:
    time.sleep(input["seconds"])
    return f"slept on attempt {ctx.attempt}"


stuck_first = Flow("stuck_first", timeout=1, max_attempts=3, base_delay=0)


@stuck_first.step()
def once(input: dict[str, str], ctx: Context) -> int:
    if ctx.attempt == 1:
        time.sleep(60)  # the process is killed long before this returns
    return ctx.attempt
