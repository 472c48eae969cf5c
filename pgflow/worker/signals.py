"""SIGINT/SIGTERM handling for :meth:`pgflow.Worker.run`.

The first signal stops the worker gracefully (running tasks get the grace period); a
second one stops it at once (running tasks are cancelled and released). Handlers are only
installed from the main thread, on platforms whose event loop supports them.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
from collections.abc import Callable
from typing import Self

__all__ = ["StopSignals"]

logger = logging.getLogger("pgflow.worker")

_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopSignals:
    """A ``with`` block during which SIGINT/SIGTERM call ``stop(immediate=...)``.

    Args:
        stop: called with ``immediate=False`` on the first signal, ``True`` on later ones.
        enabled: whether to install anything at all.
    """

    def __init__(self, stop: Callable[..., None], enabled: bool) -> None:
        self._stop = stop
        self._enabled = enabled and threading.current_thread() is threading.main_thread()
        self._received = 0
        self._installed: list[signal.Signals] = []

    def __enter__(self) -> Self:
        if self._enabled:
            loop = asyncio.get_running_loop()
            for sig in _SIGNALS:
                try:
                    loop.add_signal_handler(sig, self._handle, sig)
                except NotImplementedError:  # pragma: no cover - Windows: KeyboardInterrupt
                    break
                self._installed.append(sig)
        return self

    def __exit__(self, *exc_info: object) -> None:
        loop = asyncio.get_running_loop()
        for sig in self._installed:
            loop.remove_signal_handler(sig)
        self._installed.clear()

    def _handle(self, sig: signal.Signals) -> None:
        self._received += 1
        immediate = self._received > 1
        what = "stopping now" if immediate else "finishing running tasks (repeat to stop now)"
        logger.info(
            "received %s: %s", sig.name, what, extra={"action": "signal", "signal": sig.name}
        )
        self._stop(immediate=immediate)
