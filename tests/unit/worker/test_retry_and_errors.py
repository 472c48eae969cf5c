"""Pure pieces of the worker: transient errors, backoff, outage logging, error capture."""

from __future__ import annotations

import logging

import psycopg
import pytest
from psycopg_pool import PoolTimeout

from pgflow.db.retry import Backoff, Health, is_transient
from pgflow.errors import ConfigurationError, DatabaseError
from pgflow.worker.runner import task_error
from pgflow.worker.settings import WorkerSettings


@pytest.mark.parametrize(
    ("error", "transient"),
    [
        (psycopg.OperationalError("server closed the connection unexpectedly"), True),
        (psycopg.errors.DeadlockDetected("deadlock detected"), True),
        (psycopg.errors.SerializationFailure("could not serialize"), True),
        (psycopg.errors.AdminShutdown("terminating connection"), True),
        (PoolTimeout("couldn't get a connection"), True),
        (psycopg.errors.UndefinedFunction("function pgflow.claim_tasks does not exist"), False),
        (psycopg.errors.UntranslatableCharacter("unsupported Unicode escape"), False),
        (ValueError("not a database error"), False),
    ],
)
def test_transient_errors_are_the_ones_worth_retrying(error: Exception, transient: bool) -> None:
    assert is_transient(error) is transient


def test_a_translated_error_is_transient_when_its_cause_is() -> None:
    try:
        try:
            raise psycopg.OperationalError("connection refused")
        except psycopg.OperationalError as exc:
            raise DatabaseError("could not connect") from exc
    except DatabaseError as wrapped:
        assert is_transient(wrapped)


def test_backoff_doubles_up_to_its_cap_and_resets() -> None:
    backoff = Backoff(base=1.0, cap=4.0)
    delays = [backoff.next_delay() for _ in range(5)]
    for delay, nominal in zip(delays, [1, 2, 4, 4, 4], strict=True):
        assert nominal / 2 <= delay <= nominal
    backoff.reset()
    assert backoff.next_delay() <= 1.0
    assert Backoff(base=0).next_delay() == 0


def test_health_logs_one_line_per_outage_and_one_when_it_ends(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="pgflow.worker")
    health = Health()
    for component in ("claims", "reports", "claims", "listener"):
        health.failed(component, psycopg.OperationalError("gone"))
    assert health.is_down
    health.ok("claims")
    health.ok("reports")
    assert health.is_down  # the listener still fails
    health.ok("listener")
    health.ok("listener")
    levels = [r.levelname for r in caplog.records if r.levelno >= logging.INFO]
    assert levels == ["WARNING", "INFO"]
    assert caplog.records[0].getMessage().startswith("database unavailable (claims: gone)")


class AppError(Exception):
    pass


def test_task_error_keeps_qualified_type_message_and_traceback() -> None:
    try:
        raise AppError("bad \x00 byte")
    except AppError as exc:
        error = task_error(exc)
    assert error.type == f"{__name__}.AppError"
    assert error.message == "bad \\x00 byte"  # Postgres text cannot hold NUL
    assert error.traceback is not None and 'raise AppError("bad \\x00 byte")' in error.traceback
    assert task_error(KeyError("k")).type == "KeyError"
    assert task_error(RuntimeError()).message == "RuntimeError()"


def test_very_long_tracebacks_keep_their_end() -> None:
    error = task_error(ValueError("x" * 100_000))
    assert len(error.message) < 9_000 and error.message.startswith("[... ")
    assert error.message.endswith("x")


@pytest.mark.parametrize(
    "options",
    [
        {"concurrency": 0},
        {"batch_size": -1},
        {"poll_interval": 0},
        {"shutdown_grace": -1},
        {"cancel_grace": -0.5},
        {"cancel_grace": "5"},
    ],
)
def test_worker_settings_out_of_range_are_refused(options: dict[str, float]) -> None:
    with pytest.raises(ConfigurationError, match=next(iter(options))):
        WorkerSettings(**options)  # type: ignore[arg-type]
