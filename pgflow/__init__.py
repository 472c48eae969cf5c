"""pgflow: a Postgres-native workflow engine with a typed Python DSL."""

from __future__ import annotations

from pgflow._version import __version__ as __version__
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
from pgflow.errors import (
    PgflowError as PgflowError,
)
from pgflow.errors import (
    RunCancelledError as RunCancelledError,
)
from pgflow.errors import (
    RunFailedError as RunFailedError,
)
from pgflow.errors import (
    RunTimeoutError as RunTimeoutError,
)
from pgflow.errors import (
    ShapeMismatchError as ShapeMismatchError,
)

__all__ = [
    "UNSET",
    "CompileError",
    "ConfigurationError",
    "Context",
    "DatabaseError",
    "DefinitionError",
    "Flow",
    "PgflowError",
    "RunCancelledError",
    "RunFailedError",
    "RunTimeoutError",
    "ShapeMismatchError",
    "StepDefinition",
    "__version__",
]
