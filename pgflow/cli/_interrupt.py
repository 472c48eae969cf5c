"""Ctrl+C for commands that run a coroutine: the first one stops it, a second one exits now.

``asyncio.run`` turns Ctrl+C into a cancelled coroutine and then ``KeyboardInterrupt``,
which click prints as ``Aborted!`` (exit 1); a second Ctrl+C lands wherever the clean-up
happens to be, and clean-up that waits for a stubborn task never ends. Here, for as long
as the coroutine and asyncio's own clean-up run, the first SIGINT cancels the coroutine
(which may clean up: ``pgflow run`` cancels its run) and surfaces as :class:`Interrupted`;
a second one exits at once with code 130, whatever is still running.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import threading
from collections.abc import Callable, Coroutine
from types import FrameType
from typing import Any, NoReturn, TypeVar

__all__ = ["EXIT_INTERRUPTED", "Interrupted", "exit_now", "run_interruptibly"]

T = TypeVar("T")

EXIT_INTERRUPTED = 130
"""The exit code of a command stopped by Ctrl+C (128 + SIGINT), as shells report it."""


class Interrupted(Exception):
    """The coroutine was cancelled by a first Ctrl+C (and has finished cleaning up)."""


def run_interruptibly(
    coroutine: Coroutine[Any, Any, T],
    *,
    on_first: Callable[[], None],
    on_second: Callable[[], None],
) -> T:
    """``asyncio.run(coroutine)``, with Ctrl+C handled as the module docstring says.

    Args:
        coroutine: what to run.
        on_first: called on the event loop at the first SIGINT, before the cancellation.
        on_second: called at the second SIGINT, right before the process exits with 130.

    Raises:
        Interrupted: the first SIGINT cancelled the coroutine.
    """
    received = 0
    running: tuple[asyncio.AbstractEventLoop, asyncio.Task[Any]] | None = None

    def first() -> None:
        on_first()
        if running is not None:
            running[1].cancel()

    def handler(signum: int, frame: FrameType | None) -> None:
        nonlocal received
        received += 1
        if received > 1:
            on_second()
            exit_now()
        if running is None or running[0].is_closed():
            raise KeyboardInterrupt  # not running (yet): as Python does by default
        running[0].call_soon_threadsafe(first)

    async def main() -> T:
        nonlocal running
        task = asyncio.current_task()
        assert task is not None
        running = (asyncio.get_running_loop(), task)
        try:
            return await coroutine
        except asyncio.CancelledError:
            if received:
                raise Interrupted from None
            raise

    if threading.current_thread() is not threading.main_thread():
        return asyncio.run(main())  # only the main thread receives signals
    previous = signal.signal(signal.SIGINT, handler)
    try:
        return asyncio.run(main())
    except KeyboardInterrupt:
        raise Interrupted from None
    finally:
        signal.signal(signal.SIGINT, previous)


def exit_now() -> NoReturn:
    """Exit with :data:`EXIT_INTERRUPTED` at once: no clean-up, no waiting for threads."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # pragma: no cover - a closed or broken pipe
            pass
    os._exit(EXIT_INTERRUPTED)
