"""Real worker processes, and a supervisor that SIGKILLs them at random.

:class:`Fleet` starts ``python -m tests.faults.worker_proc`` processes (logs in files, so
a full pipe never blocks a worker), kills and replaces them, and on exit stops every one it
started: SIGTERM first, SIGKILL for any still alive after a bound. :class:`Chaos` is the
supervisor thread: every so often it kills a random live worker with SIGKILL (no report,
no release: its tasks wait for their leases to expire) and starts a new one.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import IO, Self

import psycopg

ROOT = Path(__file__).resolve().parents[2]


class Fleet:
    """Worker processes serving :mod:`tests.faults.flows` on ``url``.

    Args:
        url: the database.
        logs: a folder for the workers' log files.
        concurrency: each worker's concurrency.
        env: extra environment variables for the workers.
    """

    def __init__(
        self, url: str, logs: Path, *, concurrency: int = 8, env: dict[str, str] | None = None
    ) -> None:
        self.url = url
        self.logs = logs
        self.concurrency = concurrency
        self.env = {**os.environ, **(env or {})}
        self.processes: list[subprocess.Popen[bytes]] = []
        self._files: list[IO[bytes]] = []
        self.killed = 0
        self.exited = 0
        self._gone: set[subprocess.Popen[bytes]] = set()
        self._lock = threading.RLock()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def alive(self) -> list[subprocess.Popen[bytes]]:
        return [p for p in self.processes if p.poll() is None]

    def spawn(self, count: int = 1) -> None:
        """Start ``count`` more workers."""
        with self._lock:
            for _ in range(count):
                log = open(self.logs / f"worker-{len(self.processes)}.log", "wb")  # noqa: SIM115
                self._files.append(log)
                command = [sys.executable, "-m", "tests.faults.worker_proc", self.url]
                process = subprocess.Popen(
                    [*command, str(self.concurrency)],
                    cwd=ROOT,
                    env=self.env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
                self.processes.append(process)

    def respawn_exited(self) -> int:
        """Start a new worker for each one that exited by itself (as systemd would)."""
        with self._lock:
            exited = [p for p in self.processes if p.poll() is not None and p not in self._gone]
            self._gone.update(exited)
            self.exited += len(exited)
        self.spawn(len(exited))
        return len(exited)

    def wait_ready(self, url: str, timeout: float = 60.0) -> None:
        """Wait until every live worker has registered (a readiness wait, bounded)."""
        deadline = time.monotonic() + timeout
        with psycopg.connect(url, autocommit=True) as conn:
            while time.monotonic() < deadline:
                pids = [p.pid for p in self.alive]
                row = conn.execute(
                    "select count(*) from pgflow.workers where pid = any(%s) "
                    "and stopped_at is null",
                    [pids],
                ).fetchone()
                if row is not None and row[0] == len(pids):
                    return
                time.sleep(0.1)
        raise AssertionError(f"workers did not register in time\n{self.log_tail()}")

    def kill_random(self, rng: random.Random) -> None:
        """SIGKILL one live worker at random and start another in its place."""
        with self._lock:
            alive = self.alive
            if not alive:
                return
            victim = rng.choice(alive)
            victim.send_signal(signal.SIGKILL)
            victim.wait(30)
            self._gone.add(victim)
            self.killed += 1
        self.spawn()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop every worker: SIGTERM (graceful), then SIGKILL after ``timeout``."""
        with self._lock:
            for process in self.alive:
                process.send_signal(signal.SIGTERM)
            for process in self.processes:
                try:
                    process.wait(timeout)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(30)
            for log in self._files:
                log.close()
            self._files.clear()

    def log_tail(self, chars: int = 4000) -> str:
        """The end of every worker log, for a failure message."""
        parts = []
        for path in sorted(self.logs.glob("worker-*.log")):
            parts.append(f"--- {path.name}\n{path.read_text(errors='replace')[-chars:]}")
        return "\n".join(parts)

    def died_while_serving(self) -> list[str]:
        """Logs of workers that exited by themselves after they had started serving.

        A worker that cannot reach the database at start-up exits at once, by design
        (its supervisor starts it again); one that was serving must never exit by itself.
        """
        died = []
        for index, process in enumerate(self.processes):
            if process.returncode in (None, 0, -signal.SIGKILL):
                continue  # running, stopped gracefully, or killed by the chaos
            text = (self.logs / f"worker-{index}.log").read_text(errors="replace")
            if "started: flows=" in text:
                died.append(f"worker-{index}.log")
        return died

    def tracebacks(self) -> list[str]:
        """Worker logs that contain a traceback (a crash, not a handled failure)."""
        return [
            p.name
            for p in sorted(self.logs.glob("worker-*.log"))
            if "Traceback" in p.read_text(errors="replace")
        ]


class Chaos(threading.Thread):
    """The supervisor: restarts workers that exited, and injects faults until stopped.

    Args:
        fleet: the workers.
        seed: seeds the random choices, so a failing run can be replayed.
        kill_every: kill a random worker with SIGKILL every (uniformly drawn) so many
            seconds; None: never.
        terminate_every: terminate every worker backend with ``pg_terminate_backend``
            (claims, reports, LISTEN and handler connections alike) every so many
            seconds; None: never.
    """

    def __init__(
        self,
        fleet: Fleet,
        *,
        seed: int,
        kill_every: tuple[float, float] | None = None,
        terminate_every: tuple[float, float] | None = None,
    ) -> None:
        super().__init__(name="chaos", daemon=True)
        self.fleet = fleet
        self.rng = random.Random(seed)
        self.kill_every = kill_every
        self.terminate_every = terminate_every
        self.terminated = 0
        self._count_lock = threading.Lock()
        self._stop_event = threading.Event()

    def _next(self, every: tuple[float, float] | None) -> float:
        return float("inf") if every is None else time.monotonic() + self.rng.uniform(*every)

    def run(self) -> None:
        next_kill, next_terminate = self._next(self.kill_every), self._next(self.terminate_every)
        while not self._stop_event.wait(0.1):
            self.fleet.respawn_exited()
            now = time.monotonic()
            if now >= next_kill:
                self.fleet.kill_random(self.rng)
                next_kill = self._next(self.kill_every)
            if now >= next_terminate:
                self.terminate_now()
                next_terminate = self._next(self.terminate_every)

    def terminate_now(self) -> None:
        """Terminate every worker backend at once (from any thread) and count them."""
        killed = terminate_worker_backends(self.fleet.url)
        with self._count_lock:
            self.terminated += killed

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop_event.set()
        self.join(60)


def terminate_worker_backends(url: str) -> int:
    """``pg_terminate_backend`` every worker connection to the database; return how many.

    Whatever each one was doing (claiming, reporting, listening, running a handler's
    query) is cut off mid-flight; a server that is down just means nothing to terminate.
    """
    try:
        with psycopg.connect(url, autocommit=True, application_name="faults") as conn:
            rows = conn.execute(
                "select pg_terminate_backend(pid) from pg_stat_activity "
                "where datname = current_database() and pid <> pg_backend_pid() "
                "and application_name = 'pgflow_worker'"
            ).fetchall()
    except psycopg.OperationalError:
        return 0
    return sum(1 for (ok,) in rows if ok)
