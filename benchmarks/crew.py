"""Long-lived worker processes that start a command together, behind a barrier.

Spawning a Python process with psycopg costs more CPU than a ``--quick`` drain, so the
crew's processes live for the whole run and take commands from a queue. A round:

1. the coordinator hands ``command(args)`` to the first ``n`` members;
2. each member sets up (connects, opens its pool, prepares) and reports ``ready``;
3. when all ``n`` are ready the coordinator notes the start time and opens the gate;
4. members work, share progress through one counter, and report their result.

Times are ``time.monotonic()`` (CLOCK_MONOTONIC on Linux: one clock for all processes).
"""

from __future__ import annotations

import importlib
import logging
import multiprocessing as mp
import queue
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Self

__all__ = ["Crew", "Member"]

logger = logging.getLogger(__name__)

# command name -> "module:function"; imported in the member, so optional dependencies
# (procrastinate) are only imported by the commands that need them.
COMMANDS = {
    "core_drain": "benchmarks.core_loop:drain",
    "core_serve": "benchmarks.core_loop:serve",
    "core_dispatch": "benchmarks.core_loop:dispatch",
    "worker_drain": "benchmarks.worker_layer:drain",
    "worker_serve": "benchmarks.worker_layer:serve",
    "otel_drain": "benchmarks.otel_overhead:drain",
    "procrastinate_drain": "benchmarks.peers:procrastinate_drain",
    "pgflow_drain": "benchmarks.edge_loop:pgflow_drain",
    "sqlapi_drain": "benchmarks.edge_loop:sqlapi_drain",
}


@dataclass(slots=True)
class Member:
    """What a command sees of its crew."""

    index: int
    _gate: Any
    _stop: Any
    _counter: Any
    _outbox: Any

    def ready(self) -> float:
        """Report ready and wait for the gate; returns the time the member went through."""
        self._outbox.put(("ready", self.index, None))
        self._gate.wait()
        return time.monotonic()

    def add(self, n: int) -> int:
        """Add ``n`` finished tasks to the shared count and return the new total."""
        with self._counter.get_lock():
            self._counter.value += n
            return int(self._counter.value)

    @property
    def count(self) -> int:
        """The shared count of finished tasks."""
        return int(self._counter.value)

    def stopping(self) -> bool:
        """Whether the coordinator asked serving members to stop."""
        return bool(self._stop.is_set())


class Crew:
    """``size`` worker processes (spawned once; see the module docstring)."""

    def __init__(self, size: int) -> None:
        ctx = mp.get_context("spawn")
        self._gate = ctx.Event()
        self._stop = ctx.Event()
        self._counter = ctx.Value("q", 0)
        self._outbox: Any = ctx.Queue()
        self._inboxes: list[Any] = [ctx.Queue() for _ in range(size)]
        self._active = 0
        self._procs = [
            ctx.Process(
                target=_member_main,
                args=(i, inbox, self._outbox, self._gate, self._stop, self._counter),
                name=f"bench-member-{i}",
                daemon=True,
            )
            for i, inbox in enumerate(self._inboxes)
        ]
        for proc in self._procs:
            proc.start()

    @property
    def pids(self) -> list[int]:
        """The members' process ids."""
        return [proc.pid or 0 for proc in self._procs]

    @property
    def size(self) -> int:
        """How many members the crew has."""
        return len(self._procs)

    def start(
        self,
        n: int,
        command: str,
        args: dict[str, Any],
        timeout: float = 120,
        before_gate: Callable[[], object] | None = None,
    ) -> float:
        """Hand ``command`` to ``n`` members, wait until all are ready, open the gate.

        ``before_gate`` is called once all are ready, right before the gate opens (to take
        "before" figures after the members' set-up, warm-up included).

        Returns:
            The time the gate opened.
        """
        if not 0 < n <= self.size:
            raise ValueError(f"the crew has {self.size} members, {n} asked for")
        self._gate.clear()
        self._stop.clear()
        with self._counter.get_lock():
            self._counter.value = 0
        for inbox in self._inboxes[:n]:
            inbox.put((command, args))
        self._active = n
        for _ in range(n):
            self._expect("ready", timeout)
        if before_gate is not None:
            before_gate()
        started = time.monotonic()
        self._gate.set()
        return started

    def stop(self) -> None:
        """Ask serving members to stop (drains stop by themselves)."""
        self._stop.set()

    def finish(self, timeout: float = 600) -> list[dict[str, Any]]:
        """Wait for the active members' results, in member order."""
        results = [self._expect("done", timeout) for _ in range(self._active)]
        self._active = 0
        return [payload for _, payload in sorted(results, key=lambda r: r[0])]

    def run(
        self,
        n: int,
        command: str,
        args: dict[str, Any],
        timeout: float = 600,
        before_gate: Callable[[], object] | None = None,
    ) -> RoundResult:
        """One round: start, then wait for every member's result."""
        started = self.start(n, command, args, before_gate=before_gate)
        return RoundResult(started, self.finish(timeout))

    def close(self) -> None:
        """Stop the members (they finish their current command first)."""
        for inbox in self._inboxes:
            inbox.put(None)
        for proc in self._procs:
            proc.join(timeout=10)
            if proc.is_alive():
                proc.terminate()

    def _expect(self, kind: str, timeout: float) -> tuple[int, Any]:
        try:
            got, index, payload = self._outbox.get(timeout=timeout)
        except queue.Empty:
            raise TimeoutError(f"no crew member reported {kind!r} within {timeout} s") from None
        if got == "error":
            raise RuntimeError(f"crew member {index} failed:\n{payload}")
        if got != kind:
            raise RuntimeError(f"crew member {index} reported {got!r}, expected {kind!r}")
        return index, payload

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass(frozen=True, slots=True)
class RoundResult:
    """When a round's gate opened, and each member's result."""

    started: float
    results: list[dict[str, Any]]


def _resolve(command: str) -> Callable[[Member, dict[str, Any]], dict[str, Any]]:
    module, _, name = COMMANDS[command].partition(":")
    function: Callable[[Member, dict[str, Any]], dict[str, Any]]
    function = getattr(importlib.import_module(module), name)
    return function


def _member_main(index: int, inbox: Any, outbox: Any, gate: Any, stop: Any, counter: Any) -> None:
    logging.basicConfig(level=logging.WARNING)
    member = Member(index, gate, stop, counter, outbox)
    while (message := inbox.get()) is not None:
        command, args = message
        try:
            outbox.put(("done", index, _resolve(command)(member, args)))
        except Exception:  # noqa: BLE001 - the coordinator re-raises it
            outbox.put(("error", index, traceback.format_exc()))
