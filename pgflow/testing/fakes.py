"""Replace single steps of a flow by fakes, with the flow's own definition rules.

:func:`with_handlers` returns a copy of a flow in which some steps run other handlers. The
copy is rebuilt step by step through the DSL, so a fake must bind exactly as a handler
written for that step would: a parameter named like a dependency receives its output, a
dependency the fake cannot receive is refused, types are checked across edges. The copy
has the same slug, shape and options as the original, so it deploys over it unchanged::

    fake = with_handlers(flow, {"website": lambda input: {"url": input.url, "text": "hi"}})
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

from pgflow.dsl.builder import StepSpec
from pgflow.dsl.flow import Flow
from pgflow.dsl.step import StepDefinition
from pgflow.errors import DefinitionError

__all__ = ["HandlerKey", "with_handlers"]

HandlerKey = str | Callable[..., Any] | StepDefinition
"""How a step to replace is named: its slug, its (decorated) handler, or its definition."""


def with_handlers(flow: Flow, handlers: Mapping[HandlerKey, Callable[..., Any]]) -> Flow:
    """Return a copy of ``flow`` whose steps named in ``handlers`` run the given fakes.

    Args:
        flow: the flow to copy (left unchanged).
        handlers: ``{step: fake}``; a step is named by its slug, handler or definition.

    Returns:
        ``flow`` itself when ``handlers`` is empty, else the copy.

    Raises:
        DefinitionError: a key names no step of the flow, or a fake breaks a definition
            rule for its step (the same error the DSL raises for such a handler).
    """
    if not handlers:
        return flow
    fakes = {_slug(flow, key): fake for key, fake in handlers.items()}
    clone = copy.copy(flow)
    clone._steps = {}
    for step in flow.steps:
        clone._register(_spec(step, fakes.get(step.slug, step.handler)))
    return clone


def _slug(flow: Flow, key: HandlerKey) -> str:
    if isinstance(key, StepDefinition):
        key = key.slug
    if callable(key):
        return flow.slug_of(key)
    if isinstance(key, str) and flow.has_step(key):
        return key
    known = ", ".join(s.slug for s in flow.steps) or "none"
    raise DefinitionError(
        f"flow {flow.slug!r} has no step {key!r} to replace (steps: {known})",
        hint="name a step of this flow in handlers={...}, by its slug or its handler",
        flow_slug=flow.slug,
        step_slug=key if isinstance(key, str) else None,
    )


def _spec(step: StepDefinition, handler: Callable[..., Any]) -> StepSpec:
    """The step as written, with dependencies by slug (the originals' handlers may be
    replaced in the copy, so a dependency named by its handler would no longer resolve)."""
    if step.spec is None:  # pragma: no cover - every step is built from a spec
        raise DefinitionError(
            f"{step.where}: this step was not built by the DSL and cannot be copied",
            hint="define it with @flow.step / flow.step(...)",
            flow_slug=step.flow_slug,
            step_slug=step.slug,
        )
    return dataclasses.replace(
        step.spec, slug=step.slug, handler=handler, depends_on=step.deps, array=None
    )
