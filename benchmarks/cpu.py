"""CPU seconds used by the Postgres server and by the benchmark's worker processes.

The server's CPU is read from its postmaster with psutil: its own time, its live
children's (backends, autovacuum, checkpointer, WAL writer) and its reaped children's
(backends that exited), so a drain's backends count even after they disconnected. Only
possible when the server runs on this machine; otherwise the figures are left out.
"""

from __future__ import annotations

import time
from contextlib import suppress

import psutil

__all__ = ["find_postmaster", "process_cpu", "server_cpu"]


def find_postmaster(backend_pid: int) -> int | None:
    """The postmaster of a backend on this machine, or None (remote server)."""
    with suppress(psutil.Error):
        parent = psutil.Process(backend_pid).parent()
        if parent is not None and parent.name() == "postgres":
            return int(parent.pid)
    return None


def server_cpu(postmaster: int | None) -> float | None:
    """CPU seconds used so far by the server, or None when it cannot be read."""
    if postmaster is None:
        return None
    try:
        main = psutil.Process(postmaster)
        times = main.cpu_times()
        total = float(times.user + times.system + times.children_user + times.children_system)
        for child in main.children():
            with suppress(psutil.Error):
                child_times = child.cpu_times()
                total += child_times.user + child_times.system
    except psutil.Error:
        return None
    return total


def process_cpu() -> float:
    """CPU seconds used so far by this process (all its threads)."""
    return time.process_time()
