"""The typed flow DSL: :class:`Flow`, :class:`StepDefinition`, :class:`Context`."""

from __future__ import annotations

from pgflow.dsl._unset import UNSET as UNSET
from pgflow.dsl._unset import Unset as Unset
from pgflow.dsl.context import Context as Context
from pgflow.dsl.flow import Flow as Flow
from pgflow.dsl.limits import Limit as Limit
from pgflow.dsl.limits import RateLimit as RateLimit
from pgflow.dsl.slugs import is_valid_slug as is_valid_slug
from pgflow.dsl.step import StepDefinition as StepDefinition

__all__ = [
    "UNSET",
    "Context",
    "Flow",
    "Limit",
    "RateLimit",
    "StepDefinition",
    "Unset",
    "is_valid_slug",
]
