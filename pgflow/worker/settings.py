"""A worker's tunables, checked once when the :class:`~pgflow.Worker` is built."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from pgflow.dsl.flow import Flow
from pgflow.errors import ConfigurationError

__all__ = ["DEFAULTS", "WorkerSettings", "served_steps"]


@dataclass(frozen=True, slots=True)
class WorkerSettings:
    """The tunables of a worker (see :class:`pgflow.Worker` for their meaning)."""

    concurrency: int = 10
    batch_size: int = 10
    poll_interval: float = 1.0
    shutdown_grace: float = 30.0
    cancel_grace: float = 5.0
    heartbeat_interval: float = 10.0
    retry_base_delay: float = 0.05
    retention_interval: float = 300.0
    schedule_interval: float = 5.0

    def __post_init__(self) -> None:
        for name in ("concurrency", "batch_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigurationError(
                    f"Worker {name} must be a positive integer, got {value!r}",
                    hint=f"pass e.g. {name}=10",
                )
        for name in (
            "poll_interval",
            "shutdown_grace",
            "cancel_grace",
            "heartbeat_interval",
            "retry_base_delay",
            "retention_interval",
            "schedule_interval",
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise ConfigurationError(
                    f"Worker {name} must be a number of seconds >= 0, got {value!r}",
                    hint=f"pass e.g. {name}=1.0",
                )
        if self.poll_interval == 0:
            raise ConfigurationError(
                "Worker poll_interval must be above 0 (0 would poll in a busy loop)",
                hint="pass e.g. poll_interval=1.0; notifications wake the worker sooner anyway",
            )


DEFAULTS = WorkerSettings()
"""The default tunables: the one place :class:`pgflow.Worker` and the CLI take them from."""


def served_steps(
    steps: Iterable[str] | str | None, flows: Sequence[Flow]
) -> tuple[str, ...] | None:
    """Check a worker pool's step slugs against the served flows.

    Returns the slugs in the order given without duplicates, or None (every step) for
    None. A step slug no served flow defines is refused, so a typo cannot leave a pool
    claiming nothing.

    Raises:
        ConfigurationError: no slugs, a non-string, or a slug no flow defines.
    """
    if steps is None:
        return None
    if isinstance(steps, str):
        raise ConfigurationError(
            f"Worker steps must be a list of step slugs, got the string {steps!r}",
            hint=f"pass steps=[{steps!r}] (the CLI takes --steps a,b)",
        )
    slugs = tuple(dict.fromkeys(steps))
    if not slugs or not all(isinstance(s, str) and s for s in slugs):
        raise ConfigurationError(
            f"Worker steps must be a non-empty list of step slugs, got {list(slugs)!r}",
            hint="pass e.g. steps=['fetch'], or leave it out to serve every step",
        )
    known = {s.slug for f in flows for s in f.steps}
    unknown = [s for s in slugs if s not in known]
    if unknown:
        names = ", ".join(f.slug for f in flows)
        raise ConfigurationError(
            f"Worker steps {unknown!r}: no served flow ({names}) has such a step",
            hint=f"use the slugs of the flows' steps: {', '.join(sorted(known))}",
        )
    return slugs
