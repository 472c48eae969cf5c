"""The manifest of a flow: everything ``pgflow inspect`` shows and ``pgflow diff`` compares.

A :class:`FlowManifest` is built from code (a :class:`~pgflow.Flow`), from the database
(a deployed slug) or from migration files, so two of them compare field by field. Types
are only known from code (and the flow input's type from the database when deploy stored
its JSON Schema); elsewhere they are None.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from pgflow.dsl.options import WhenMode
from pgflow.shape import FlowShape

__all__ = [
    "FLOW_OPTIONS",
    "STEP_OPTIONS",
    "DeployedFlow",
    "FlowManifest",
    "Parameter",
    "Receives",
    "Source",
    "StepManifest",
]

Source = Literal["code", "database", "migrations"]
Receives = Literal["input", "dependency", "element", "dependencies"]
FLOW_OPTIONS = ("max_attempts", "base_delay", "timeout")
STEP_OPTIONS = ("max_attempts", "base_delay", "timeout", "start_delay")


class Parameter(BaseModel):
    """One handler parameter: its name, what it receives and its type's name."""

    model_config = ConfigDict(frozen=True)

    name: str
    receives: Receives
    type: str | None


class StepManifest(BaseModel):
    """One step, in definition order.

    Attributes:
        options: the step's tunables as set; None means "not set" (max_attempts,
            base_delay and timeout then inherit the flow's; start_delay is 0).
        parameters: the handler's parameters (the Context left out); None when unknown.
        output_type: the name of the output's type; None when unknown.
        returns_array: whether the step was declared with ``flow.array``; None when unknown.
    """

    model_config = ConfigDict(frozen=True)

    step_slug: str
    step_type: Literal["single", "map"]
    depends_on: tuple[str, ...]
    returns_array: bool | None = None
    parameters: tuple[Parameter, ...] | None = None
    output_type: str | None = None
    options: dict[str, int | None]
    required_input_pattern: Any = None
    forbidden_input_pattern: Any = None
    when_unmet: WhenMode
    when_exhausted: WhenMode


class FlowManifest(BaseModel):
    """A flow's manifest.

    Attributes:
        source: where it was read: ``code``, ``database`` or ``migrations``.
        location: the FLOWS reference, the database (no password) or the migration file.
        status: ``ready`` or ``defining`` for a deployed flow; None otherwise.
        created_at: when it was deployed; None otherwise.
        input_type: the name of the run input's type; None when unknown.
        options: the flow's tunables (max_attempts, base_delay, timeout).
        retention: how long finished runs are kept (``30d``, ``12h``), or None: forever.
        priority: the default priority of the flow's runs (higher first).
        limits: concurrency and rate limits by name (``concurrency limit (flow)``: ``20``,
            ``rate limit fetch``: ``100 per 60 s``); None when unknown (migration files).
        shape: the shape, numbers exact (not part of the JSON form).
    """

    model_config = ConfigDict(frozen=True)

    flow_slug: str
    source: Source
    location: str
    checksum: str
    status: str | None = None
    created_at: datetime | None = None
    input_type: str | None = None
    options: dict[str, int]
    retention: str | None = None
    priority: int = 0
    limits: dict[str, str] | None = None
    steps: tuple[StepManifest, ...]
    shape: FlowShape = Field(exclude=True)


class DeployedFlow(BaseModel):
    """One line of ``pgflow flows``: a deployed flow and how many runs it has by status."""

    model_config = ConfigDict(frozen=True)

    flow_slug: str
    checksum: str
    status: str
    steps: int
    created_at: datetime
    runs: dict[str, int]
