"""Lay out a flow's DAG for an SVG drawing: layers by dependency depth, left to right.

A step's layer is one more than the deepest of its dependencies (roots are layer 0).
Within a layer, steps are ordered by the mean position of their dependencies (one
barycentre sweep, ties in definition order), which removes most edge crossings of the
flows people write. Pure: no I/O, no templates; the SVG itself is a template.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

__all__ = ["Edge", "Layout", "Node", "layout"]

NODE_WIDTH: Final = 168
NODE_HEIGHT: Final = 40
GAP_X: Final = 56
GAP_Y: Final = 18
MARGIN: Final = 8
LABEL_CHARS: Final = 20


@dataclass(frozen=True, slots=True)
class Node:
    """One step drawn as a box at (x, y), its top-left corner."""

    slug: str
    step_type: str
    layer: int
    x: int
    y: int
    label: str

    @property
    def is_map(self) -> bool:
        """Whether the step is a map step (drawn as a stack)."""
        return self.step_type == "map"


@dataclass(frozen=True, slots=True)
class Edge:
    """A dependency ``source -> target`` as an SVG path."""

    source: str
    target: str
    path: str


@dataclass(frozen=True, slots=True)
class Layout:
    """A laid-out DAG: nodes, edges and the drawing's size."""

    nodes: tuple[Node, ...]
    edges: tuple[Edge, ...]
    width: int
    height: int
    node_width: int = NODE_WIDTH
    node_height: int = NODE_HEIGHT


def _label(slug: str) -> str:
    return slug if len(slug) <= LABEL_CHARS else slug[: LABEL_CHARS - 1] + "…"


def _layers(steps: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    """Each step's depth; steps come in definition order, so dependencies come first."""
    depth: dict[str, int] = {}
    for step in steps:
        deps = [depth[d] for d in step["deps"] if d in depth]
        depth[step["step_slug"]] = 1 + max(deps) if deps else 0
    return depth


def _order(steps: Sequence[Mapping[str, Any]], depth: Mapping[str, int]) -> list[list[str]]:
    """Steps per layer, each layer sorted by the barycentre of its dependencies' rows."""
    layers: list[list[str]] = [[] for _ in range(max(depth.values(), default=-1) + 1)]
    deps = {s["step_slug"]: [d for d in s["deps"] if d in depth] for s in steps}
    row: dict[str, float] = {}
    for index, step in enumerate(steps):
        layers[depth[step["step_slug"]]].append(step["step_slug"])
        row.setdefault(step["step_slug"], index)
    for layer in layers:
        for slug in layer:
            if deps[slug]:
                row[slug] = sum(row[d] for d in deps[slug]) / len(deps[slug])
        layer.sort(key=lambda slug: row[slug])
        row.update({slug: float(i) for i, slug in enumerate(layer)})
    return layers


def _edge(source: Node, target: Node) -> Edge:
    x1, y1 = source.x + NODE_WIDTH, source.y + NODE_HEIGHT // 2
    x2, y2 = target.x, target.y + NODE_HEIGHT // 2
    bend = (x2 - x1) // 2
    path = f"M{x1},{y1} C{x1 + bend},{y1} {x2 - bend},{y2} {x2},{y2}"
    return Edge(source.slug, target.slug, path)


def layout(steps: Sequence[Mapping[str, Any]]) -> Layout:
    """Lay out steps given in definition order as ``{"step_slug", "step_type", "deps"}``.

    Dependencies that name no listed step are ignored. Layers are centred vertically.
    """
    depth = _layers(steps)
    layers = _order(steps, depth)
    tallest = max((len(layer) for layer in layers), default=0)
    height = tallest * (NODE_HEIGHT + GAP_Y) - GAP_Y + 2 * MARGIN if tallest else 0
    types = {s["step_slug"]: str(s.get("step_type") or "single") for s in steps}
    nodes: dict[str, Node] = {}
    for number, layer in enumerate(layers):
        offset = (tallest - len(layer)) * (NODE_HEIGHT + GAP_Y) // 2
        for position, slug in enumerate(layer):
            x = MARGIN + number * (NODE_WIDTH + GAP_X)
            y = MARGIN + offset + position * (NODE_HEIGHT + GAP_Y)
            nodes[slug] = Node(slug, types[slug], number, x, y, _label(slug))
    edges = [
        _edge(nodes[dep], nodes[s["step_slug"]]) for s in steps for dep in s["deps"] if dep in nodes
    ]
    width = len(layers) * (NODE_WIDTH + GAP_X) - GAP_X + 2 * MARGIN if layers else 0
    ordered = tuple(nodes[s["step_slug"]] for s in steps)
    return Layout(ordered, tuple(edges), width, height)
