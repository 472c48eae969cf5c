"""pgflow: a Postgres-native workflow engine with a typed Python DSL."""

from __future__ import annotations

from pgflow._version import __version__ as __version__
from pgflow.client import AsyncClient as AsyncClient
from pgflow.client import Client as Client
from pgflow.dsl import UNSET as UNSET
from pgflow.dsl import Context as Context
from pgflow.dsl import Flow as Flow
from pgflow.dsl import StepDefinition as StepDefinition
from pgflow.errors import (
    CompileError as CompileError,
)
from pgflow.errors import (
    ConfigurationError as ConfigurationError,
)
from pgflow.errors import (
    DatabaseError as DatabaseError,
)
from pgflow.errors import (
    DefinitionError as DefinitionError,
)
from pgflow.errors import InvalidInputError as InvalidInputError
from pgflow.errors import (
    PgflowError as PgflowError,
)
from pgflow.errors import (
    RunCancelledError as RunCancelledError,
)
from pgflow.errors import RunError as RunError
from pgflow.errors import (
    RunFailedError as RunFailedError,
)
from pgflow.errors import (
    RunTimeoutError as RunTimeoutError,
)
from pgflow.errors import (
    ShapeMismatchError as ShapeMismatchError,
)
from pgflow.errors import UnknownFlowError as UnknownFlowError
from pgflow.errors import UnknownRunError as UnknownRunError
from pgflow.models import Run as Run
from pgflow.models import StepState as StepState
from pgflow.worker import Worker as Worker

__all__ = [
    "UNSET",
    "AsyncClient",
    "Client",
    "CompileError",
    "ConfigurationError",
    "Context",
    "DatabaseError",
    "DefinitionError",
    "Flow",
    "InvalidInputError",
    "PgflowError",
    "Run",
    "RunCancelledError",
    "RunError",
    "RunFailedError",
    "RunTimeoutError",
    "ShapeMismatchError",
    "StepDefinition",
    "StepState",
    "UnknownFlowError",
    "UnknownRunError",
    "Worker",
    "__version__",
]
