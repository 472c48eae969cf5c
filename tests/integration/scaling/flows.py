"""The flows the PgBouncer fleet test serves: chains, maps, a flaky step and a doomed one.

Chains and maps are the fault suite's (:mod:`tests.faults.flows`: every execution is
recorded, every output names its attempt). ``scaling_flaky`` fails its first attempt and
succeeds on the second; ``scaling_doomed`` always fails, so its runs fail as designed
after two attempts.
"""

from __future__ import annotations

from typing import Any

from pgflow import Context, Flow
from tests.faults.flows import OPTIONS, chain, fanout, out, record

flaky = Flow("scaling_flaky", **OPTIONS)


@flaky.step()
async def shaky(input: dict[str, int], ctx: Context) -> dict[str, int]:
    await record(ctx)
    if ctx.attempt == 1:
        raise RuntimeError(f"first attempt of run {input['n']} fails by design")
    return out(input["n"] * 10, ctx)


doomed = Flow("scaling_doomed", max_attempts=2, base_delay=0, timeout=5)


@doomed.step()
async def hopeless(input: Any, ctx: Context) -> None:
    # No execution record: its database call could fail during PgBouncer's outage and
    # replace the designed error; these runs are checked on their own and then removed.
    raise ValueError("this step always fails")


FLOWS = (chain, fanout, flaky, doomed)
