"""pgflow: a Postgres-native workflow engine with a typed Python DSL."""

from __future__ import annotations

from pgflow._version import __version__ as __version__
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
    "CompileError",
    "ConfigurationError",
    "DatabaseError",
    "DefinitionError",
    "PgflowError",
    "RunCancelledError",
    "RunFailedError",
    "RunTimeoutError",
    "ShapeMismatchError",
    "__version__",
]
