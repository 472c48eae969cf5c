"""The exception hierarchy of pgflow.

Every error raised by pgflow derives from :class:`PgflowError`. Each message says what
happened, where (flow / step / run / file) and what to do; ``hint`` carries the "what to
do" line on its own so the CLI can print it separately::

    PgflowError
    ├── ConfigurationError        no usable database URL, bad pyproject setting, embedded server
    ├── DefinitionError           a flow or step definition is invalid (DSL or SQL side)
    │   ├── InvalidSlugError      a slug breaks the slug rules
    │   └── TypeMismatchError     a consumer's annotation cannot accept a producer's output
    ├── FlowLoadError             FLOWS could not be imported / found
    ├── CompileError              compiled SQL cannot be produced (e.g. earlier migration conflict)
    ├── ShapeMismatchError        a slug already exists with a different shape (flows are immutable)
    ├── SchemaError               the pgflow schema is missing, too old, newer than this package
    ├── DatabaseError             Postgres failed in a way pgflow does not translate further
    ├── UnknownFlowError          no flow with that slug is deployed
    ├── FlowNotReadyError         a flow is only partly defined (its compiled SQL stopped midway)
    ├── UnknownRunError           no run with that id
    ├── InvalidInputError         run input / task output is not acceptable
    │   └── InputDecodeError      a claimed task's input is JSON Python cannot decode
    ├── ValueStoreError           a value stored by reference cannot be stored or read
    │   └── ValueMissingError     a stored value is gone or damaged (deleted out of band)
    └── RunError                  a waited-for run failed, was cancelled, or timed out
        ├── RunFailedError
        ├── RunCancelledError
        └── RunTimeoutError
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, TypedDict

from typing_extensions import Unpack

if TYPE_CHECKING:
    from pgflow.models import Run

__all__ = [
    "CompileError",
    "ConfigurationError",
    "DatabaseError",
    "DefinitionError",
    "ErrorContext",
    "FlowLoadError",
    "FlowNotReadyError",
    "InputDecodeError",
    "InvalidInputError",
    "InvalidSlugError",
    "PgflowError",
    "RunCancelledError",
    "RunError",
    "RunFailedError",
    "RunTimeoutError",
    "SchemaError",
    "ShapeMismatchError",
    "TypeMismatchError",
    "UnknownFlowError",
    "UnknownRunError",
    "ValueMissingError",
    "ValueStoreError",
]


class ErrorContext(TypedDict, total=False):
    """The keyword arguments every pgflow error accepts (see :class:`PgflowError`)."""

    hint: str | None
    flow_slug: str | None
    step_slug: str | None
    run_id: uuid.UUID | str | None
    sqlstate: str | None
    detail: str | None
    constraint_name: str | None
    schema_name: str | None
    table_name: str | None
    column_name: str | None
    server: str | None


class PgflowError(Exception):
    """pgflow failed.

    Every pgflow error may say where it happened and, when Postgres raised it, what the
    server reported. Attributes that do not apply are None.

    Attributes:
        message: what happened (the text without the hint).
        hint: what to do about it, on its own line in the CLI.
        flow_slug: the flow concerned.
        step_slug: the step concerned.
        run_id: the run concerned (the text given, when it was not a valid UUID).
        sqlstate: the SQLSTATE when Postgres raised the error (``PGF..`` for pgflow's own).
        detail: Postgres' DETAIL line.
        constraint_name: the constraint a Postgres error names (e.g. on ``23505``).
        schema_name: the schema a Postgres error names.
        table_name: the table a Postgres error names.
        column_name: the column a Postgres error names.
        server: the server a connection error concerns (``user@host:port/db``).
    """

    hint: str | None = None

    def __init__(self, message: str | None = None, **context: Unpack[ErrorContext]) -> None:
        self.message: str = message or (self.__doc__ or "").strip().splitlines()[0]
        hint = context.get("hint")
        if hint is not None:
            self.hint = hint
        self.flow_slug: str | None = context.get("flow_slug")
        self.step_slug: str | None = context.get("step_slug")
        self.run_id: uuid.UUID | str | None = context.get("run_id")
        self.sqlstate: str | None = context.get("sqlstate")
        self.detail: str | None = context.get("detail")
        self.constraint_name: str | None = context.get("constraint_name")
        self.schema_name: str | None = context.get("schema_name")
        self.table_name: str | None = context.get("table_name")
        self.column_name: str | None = context.get("column_name")
        self.server: str | None = context.get("server")
        super().__init__(self.message)

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message}\nHint: {self.hint}"
        return self.message


class ConfigurationError(PgflowError):
    """pgflow is not configured correctly."""


class DefinitionError(PgflowError):
    """A flow definition is invalid."""


class InvalidSlugError(DefinitionError):
    """A slug is invalid."""


class TypeMismatchError(DefinitionError):
    """A step cannot accept the output type of one of its dependencies.

    Attributes:
        parameter: the consumer's handler parameter that cannot accept the output.
    """

    def __init__(
        self,
        message: str | None = None,
        *,
        parameter: str | None = None,
        **context: Unpack[ErrorContext],
    ) -> None:
        super().__init__(message, **context)
        self.parameter = parameter


class FlowLoadError(PgflowError):
    """Flows could not be loaded.

    Attributes:
        target: the FLOWS reference that was loaded (file or module, optionally ``:attr``).
        cause: the exception importing it raised, if any.
    """

    def __init__(
        self,
        message: str | None = None,
        *,
        target: str | None = None,
        cause: BaseException | None = None,
        **context: Unpack[ErrorContext],
    ) -> None:
        super().__init__(message, **context)
        self.target = target
        self.cause = cause


class CompileError(PgflowError):
    """The flow could not be compiled to SQL.

    Attributes:
        path: the file concerned (an earlier migration or revision).
        line: the line in that file, when known.
        checksum_expected: the checksum the earlier file defines for the slug.
        checksum_actual: the checksum of the flow in the code.
    """

    def __init__(
        self,
        message: str | None = None,
        *,
        path: str | None = None,
        line: int | None = None,
        checksum_expected: str | None = None,
        checksum_actual: str | None = None,
        **context: Unpack[ErrorContext],
    ) -> None:
        super().__init__(message, **context)
        self.path = path
        self.line = line
        self.checksum_expected = checksum_expected
        self.checksum_actual = checksum_actual


class ShapeMismatchError(PgflowError):
    """A flow with this slug already exists with a different shape.

    Attributes:
        checksum_expected: the deployed checksum.
        checksum_actual: the checksum of the flow being applied.
        results: for a refused deploy, what would have happened to each flow
            (:class:`pgflow.deploy.DeployResult`); empty otherwise.
    """

    def __init__(
        self,
        message: str | None = None,
        *,
        checksum_expected: str | None = None,
        checksum_actual: str | None = None,
        results: Sequence[Any] = (),
        **context: Unpack[ErrorContext],
    ) -> None:
        super().__init__(message, **context)
        self.checksum_expected = checksum_expected
        self.checksum_actual = checksum_actual
        self.results = list(results)


class SchemaError(PgflowError):
    """The pgflow schema in the database does not match this package.

    Attributes:
        migration: the migration file concerned, if one.
        version: the schema version found in the database, if known.
    """

    def __init__(
        self,
        message: str | None = None,
        *,
        migration: str | None = None,
        version: int | None = None,
        **context: Unpack[ErrorContext],
    ) -> None:
        super().__init__(message, **context)
        self.migration = migration
        self.version = version


class DatabaseError(PgflowError):
    """The database reported an error.

    Attributes:
        migration: the migration file that failed, when installing the schema.
    """

    def __init__(
        self,
        message: str | None = None,
        *,
        migration: str | None = None,
        **context: Unpack[ErrorContext],
    ) -> None:
        super().__init__(message, **context)
        self.migration = migration


class UnknownFlowError(PgflowError):
    """No flow with this slug is deployed."""


class FlowNotReadyError(PgflowError):
    """The flow is only partly defined."""


class UnknownRunError(PgflowError):
    """No run with this id exists."""


class InvalidInputError(PgflowError):
    """The input is not acceptable.

    Attributes:
        errors: for a run input refused by its flow's stored JSON Schema, every error as a
            ``(path, message)`` pair (``("input.url", "'url' is a required property")``);
            empty otherwise.
    """

    def __init__(
        self,
        message: str | None = None,
        *,
        errors: Sequence[tuple[str, str]] = (),
        **context: Unpack[ErrorContext],
    ) -> None:
        super().__init__(message, **context)
        self.errors = list(errors)


class InputDecodeError(InvalidInputError):
    """A claimed task's input cannot be decoded.

    Never raised to callers: the worker stores it as the failure of the task's attempt
    (``error_type`` ``InputDecodeError``), and retries and exhaustion apply as usual.

    Attributes:
        task_index: the task's index (0 unless a map task).
        reason: what is wrong with the value.
    """

    def __init__(
        self,
        message: str | None = None,
        *,
        task_index: int = 0,
        reason: str = "",
        **context: Unpack[ErrorContext],
    ) -> None:
        super().__init__(message, **context)
        self.task_index = task_index
        self.reason = reason


class ValueStoreError(PgflowError):
    """A value stored by reference cannot be stored or read (docs/large-values.md).

    Raised by clients reading runs; a worker stores it as the failure of the task's
    attempt (``error_type`` ``pgflow.ValueStoreError``, or ``pgflow.ValueMissingError``),
    retried as usual.

    Attributes:
        store: the name of the store concerned (``pg`` for Postgres' own), if known.
    """

    def __init__(
        self,
        message: str | None = None,
        *,
        store: str | None = None,
        **context: Unpack[ErrorContext],
    ) -> None:
        super().__init__(message, **context)
        self.store = store


class ValueMissingError(ValueStoreError):
    """A stored value is missing or damaged (deleted or changed outside pgflow)."""


class RunError(PgflowError):
    """The run did not complete.

    Attributes:
        run: the run as last read (its steps included), when known.
        error_type: the failing task's exception type (failed runs).
        error_message: the failing task's error message (failed runs).
    """

    def __init__(
        self,
        message: str | None = None,
        *,
        run: Run | None = None,
        error_type: str | None = None,
        error_message: str | None = None,
        **context: Unpack[ErrorContext],
    ) -> None:
        super().__init__(message, **context)
        self.run = run
        self.error_type = error_type
        self.error_message = error_message


class RunFailedError(RunError):
    """The run failed."""


class RunCancelledError(RunError):
    """The run was cancelled."""


class RunTimeoutError(RunError):
    """Timed out waiting for the run to finish."""
