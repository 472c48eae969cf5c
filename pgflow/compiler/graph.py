"""Draw a flow's DAG as Mermaid or Graphviz DOT text (``pgflow graph``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from pgflow.dsl.flow import Flow
from pgflow.dsl.step import StepDefinition

GraphFormat = Literal["mermaid", "dot"]


def render_graph(flows: Sequence[Flow], fmt: GraphFormat) -> str:
    """Render ``flows`` (one diagram each, separated by a blank line).

    Args:
        flows: the flows to draw.
        fmt: ``"mermaid"`` (a ``flowchart TD``) or ``"dot"`` (a ``digraph``).

    Returns:
        The diagram text, ending with a newline.
    """
    draw = to_mermaid if fmt == "mermaid" else to_dot
    return "\n".join(draw(flow) for flow in flows)


def to_mermaid(flow: Flow) -> str:
    """Return a Mermaid ``flowchart`` of ``flow``; map steps are drawn as subroutines.

    Node ids are prefixed (``s_<slug>``) because Mermaid reserves words such as ``end``.
    """
    lines = ["flowchart TD", f"  %% pgflow flow: {flow.slug}"]
    for step in flow.steps:
        shape = ('[["', '"]]') if step.step_type == "map" else ('["', '"]')
        lines.append(f"  s_{step.slug}{shape[0]}{_label(step)}{shape[1]}")
    for step in flow.steps:
        lines += [f"  s_{dep} --> s_{step.slug}" for dep in step.deps]
    return "\n".join(lines) + "\n"


def to_dot(flow: Flow) -> str:
    """Return a Graphviz ``digraph`` of ``flow``; map steps are drawn as double boxes."""
    lines = [f'digraph "{flow.slug}" {{', "  rankdir=TB;", "  node [shape=box];"]
    for step in flow.steps:
        style = ", peripheries=2" if step.step_type == "map" else ""
        lines.append(f'  "{step.slug}" [label="{_label(step)}"{style}];')
    for step in flow.steps:
        lines += [f'  "{dep}" -> "{step.slug}";' for dep in step.deps]
    lines.append("}")
    return "\n".join(lines) + "\n"


def _label(step: StepDefinition) -> str:
    # Slugs are [A-Za-z0-9_] only, so they need no escaping in either format.
    notes = []
    if step.step_type == "map":
        notes.append("map")
    if step.returns_array:
        notes.append("array")
    condition = _condition(step)
    if condition:
        notes.append(f"{condition}, {step.when_unmet}")
    return step.slug + (f" ({'; '.join(notes)})" if notes else "")


def _condition(step: StepDefinition) -> str:
    """Which conditions the step has: ``if``, ``if_not`` or ``if + if_not``."""
    names = [
        name
        for name, pattern in (
            ("if", step.required_input_pattern),
            ("if_not", step.forbidden_input_pattern),
        )
        if pattern is not None
    ]
    return " + ".join(names)
