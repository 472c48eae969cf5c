"""pgflow: a Postgres-native workflow engine with a typed Python DSL.

The public API is what ``__all__`` lists. ``Client``, ``AsyncClient`` and ``Worker`` are
imported on first use, so that ``import pgflow`` stays cheap for tools that only need the DSL
or the errors (Alembic loads pgflow's plugin on every command).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from pgflow._version import __version__ as __version__
from pgflow.dsl import UNSET as UNSET
from pgflow.dsl import Context as Context
from pgflow.dsl import Flow as Flow
from pgflow.dsl import Limit as Limit
from pgflow.dsl import RateLimit as RateLimit
from pgflow.dsl import StepDefinition as StepDefinition
from pgflow.errors import CompileError as CompileError
from pgflow.errors import ConfigurationError as ConfigurationError
from pgflow.errors import DatabaseError as DatabaseError
from pgflow.errors import DefinitionError as DefinitionError
from pgflow.errors import FlowLoadError as FlowLoadError
from pgflow.errors import FlowNotReadyError as FlowNotReadyError
from pgflow.errors import InputDecodeError as InputDecodeError
from pgflow.errors import InvalidInputError as InvalidInputError
from pgflow.errors import InvalidSlugError as InvalidSlugError
from pgflow.errors import PgflowError as PgflowError
from pgflow.errors import RunCancelledError as RunCancelledError
from pgflow.errors import RunError as RunError
from pgflow.errors import RunFailedError as RunFailedError
from pgflow.errors import RunTimeoutError as RunTimeoutError
from pgflow.errors import SchemaError as SchemaError
from pgflow.errors import ShapeMismatchError as ShapeMismatchError
from pgflow.errors import TypeMismatchError as TypeMismatchError
from pgflow.errors import UnknownFlowError as UnknownFlowError
from pgflow.errors import UnknownRunError as UnknownRunError
from pgflow.errors import ValueMissingError as ValueMissingError
from pgflow.errors import ValueStoreError as ValueStoreError
from pgflow.models import Run as Run
from pgflow.models import StepState as StepState
from pgflow.run_ids import keyed_run_id as keyed_run_id

if TYPE_CHECKING:
    from pgflow.client import AsyncClient as AsyncClient
    from pgflow.client import Client as Client
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
    "FlowLoadError",
    "FlowNotReadyError",
    "InputDecodeError",
    "InvalidInputError",
    "InvalidSlugError",
    "Limit",
    "PgflowError",
    "RateLimit",
    "Run",
    "RunCancelledError",
    "RunError",
    "RunFailedError",
    "RunTimeoutError",
    "SchemaError",
    "ShapeMismatchError",
    "StepDefinition",
    "StepState",
    "TypeMismatchError",
    "UnknownFlowError",
    "UnknownRunError",
    "ValueMissingError",
    "ValueStoreError",
    "Worker",
    "__version__",
    "keyed_run_id",
]

_LAZY = {"AsyncClient": "pgflow.client", "Client": "pgflow.client", "Worker": "pgflow.worker"}

# Pydantic models keep their defining module: pydantic resolves annotations through it.
_KEEP_MODULE = {"Run", "StepState", "UNSET", "__version__"}


def _public(value: Any) -> Any:
    value.__module__ = "pgflow"
    return value


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'pgflow' has no attribute {name!r}")
    value = _public(getattr(importlib.import_module(module), name))
    globals()[name] = value
    return value


for _name in __all__:
    if _name not in _LAZY and _name not in _KEEP_MODULE:
        _public(globals()[_name])
del _name
