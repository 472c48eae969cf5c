"""The flow compiler: a :class:`~pgflow.Flow` to deterministic SQL. See docs/dsl.md (compiling).

``compile_flow(flow)`` returns a :class:`CompiledFlow` whose ``sql`` is::

    -- pgflow flow: <slug>
    -- checksum: <hex sha-256 of the shape>
    -- generator: pgflow-py <version>

    SELECT pgflow.create_flow('<slug>', <non-default options>, shape => ..., checksum => ...);

    SELECT pgflow.add_step('<slug>', '<step>', <non-default arguments>);
    ...
"""

from __future__ import annotations

from dataclasses import dataclass

from pgflow._version import __version__
from pgflow.compiler.render import render_script
from pgflow.compiler.statements import Call, flow_calls
from pgflow.dsl.flow import Flow
from pgflow.shape import FlowShape, shape_of

__all__ = ["GENERATOR", "CompiledFlow", "compile_flow", "compile_flows"]

GENERATOR = f"pgflow-py {__version__}"


@dataclass(frozen=True, slots=True)
class CompiledFlow:
    """A flow compiled to SQL.

    Attributes:
        flow_slug: the flow's slug.
        shape: the flow's shape.
        checksum: the shape's checksum (equals SQL ``pgflow.flow_checksum`` once applied).
        calls: the statements, in order.
        sql: the rendered script (header comment, then one statement per call).
    """

    flow_slug: str
    shape: FlowShape
    checksum: str
    calls: tuple[Call, ...]
    sql: str


def compile_flow(flow: Flow, *, generator: str = GENERATOR) -> CompiledFlow:
    """Compile ``flow`` to SQL.

    Args:
        flow: a defined flow (it is already validated).
        generator: the generator named in the header (tests pin it).

    Returns:
        The compiled flow; the same flow always gives the same bytes.
    """
    shape = shape_of(flow)
    calls = flow_calls(flow, shape)
    header = (f"pgflow flow: {flow.slug}", f"checksum: {shape.checksum}", f"generator: {generator}")
    sql = render_script(header, calls)
    return CompiledFlow(flow.slug, shape, shape.checksum, calls, sql)


def compile_flows(flows: list[Flow] | tuple[Flow, ...], *, generator: str = GENERATOR) -> str:
    """Compile several flows into one script (each flow's SQL, separated by a blank line)."""
    return "\n".join(compile_flow(flow, generator=generator).sql for flow in flows)
