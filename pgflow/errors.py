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
    └── RunError                  a waited-for run failed, was cancelled, or timed out
        ├── RunFailedError
        ├── RunCancelledError
        └── RunTimeoutError
"""

from __future__ import annotations

from typing import Any


class PgflowError(Exception):
    """pgflow failed."""

    hint: str | None = None

    def __init__(self, message: str | None = None, *, hint: str | None = None, **attrs: Any):
        self.message = message or (self.__doc__ or "").strip()
        if hint is not None:
            self.hint = hint
        for key, value in attrs.items():
            setattr(self, key, value)
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
    """A step cannot accept the output type of one of its dependencies."""


class FlowLoadError(PgflowError):
    """Flows could not be loaded."""


class CompileError(PgflowError):
    """The flow could not be compiled to SQL."""


class ShapeMismatchError(PgflowError):
    """A flow with this slug already exists with a different shape."""


class SchemaError(PgflowError):
    """The pgflow schema in the database does not match this package."""


class DatabaseError(PgflowError):
    """The database reported an error."""


class UnknownFlowError(PgflowError):
    """No flow with this slug is deployed."""


class FlowNotReadyError(PgflowError):
    """The flow is only partly defined."""


class UnknownRunError(PgflowError):
    """No run with this id exists."""


class InvalidInputError(PgflowError):
    """The input is not acceptable."""


class InputDecodeError(InvalidInputError):
    """A claimed task's input cannot be decoded.

    Never raised to callers: the worker stores it as the failure of the task's attempt
    (``error_type`` ``InputDecodeError``), and retries and exhaustion apply as usual.

    Attributes:
        flow_slug: the task's flow.
        step_slug: the task's step.
        task_index: the task's index (0 unless a map task).
        reason: what is wrong with the value.
    """

    flow_slug: str
    step_slug: str
    task_index: int
    reason: str


class RunError(PgflowError):
    """The run did not complete."""


class RunFailedError(RunError):
    """The run failed."""


class RunCancelledError(RunError):
    """The run was cancelled."""


class RunTimeoutError(RunError):
    """Timed out waiting for the run to finish."""
