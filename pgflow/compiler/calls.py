"""Read one ``pgflow.<function>(...)`` call from a sqlglot AST into Python values."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

from sqlglot import exp

PARAMETERS: Final[dict[str, tuple[str, ...]]] = {
    "create_flow": (
        "flow_slug",
        "max_attempts",
        "base_delay",
        "timeout",
        "shape",
        "checksum",
        "input_schema",
        "retention",
        "priority",
    ),
    "add_step": (
        "flow_slug",
        "step_slug",
        "deps_slugs",
        "max_attempts",
        "base_delay",
        "timeout",
        "start_delay",
        "step_type",
        "required_input_pattern",
        "forbidden_input_pattern",
        "when_unmet",
        "when_exhausted",
    ),
    "delete_flow_and_data": ("flow_slug",),
}
"""Parameter names in positional order, as the SQL functions declare them."""


class Unreadable(Exception):
    """A call whose function or arguments cannot be read statically."""


@dataclass(frozen=True, slots=True)
class FoundCall:
    """A pgflow definition call found in a SQL file.

    Attributes:
        function: ``create_flow``, ``add_step`` or ``delete_flow_and_data``.
        arguments: parameter name to value (``str``, ``int``, ``list``, ``None``, ...),
            positional arguments already named; jsonb values stay JSON text.
        path: the file.
        line: the line the call is on.
    """

    function: str
    arguments: dict[str, Any] = field(hash=False)
    path: str
    line: int


def read_call(function: exp.Anonymous, path: str, line: int) -> FoundCall:
    """Read the call ``function`` (the ``Anonymous`` node under ``pgflow.``).

    Raises:
        Unreadable: an unknown function or parameter, or an argument that is not a literal.
    """
    name = _function_name(function)
    parameters = PARAMETERS[name]
    arguments: dict[str, Any] = {}
    for index, node in enumerate(function.expressions):
        key, value = _argument(node, index, parameters)
        if key in arguments:
            raise Unreadable(f"argument {key!r} of pgflow.{name} is given twice")
        arguments[key] = value
    return FoundCall(name, arguments, path, line)


def _function_name(function: exp.Anonymous) -> str:
    this = function.this
    quoted = isinstance(this, exp.Identifier) and this.quoted
    name = function.name if quoted else function.name.lower()
    if name not in PARAMETERS:
        raise Unreadable(f"pgflow.{function.name} is not a function this reader knows")
    return name


def _argument(node: exp.Expression, index: int, parameters: tuple[str, ...]) -> tuple[str, Any]:
    if isinstance(node, exp.Kwarg | exp.PropertyEQ):
        key = node.this.name if node.this.args.get("quoted") else node.this.name.lower()
        if key not in parameters:
            raise Unreadable(f"unknown parameter {key!r}")
        return key, literal_value(node.expression)
    if index >= len(parameters):
        raise Unreadable(f"too many arguments ({index + 1})")
    return parameters[index], literal_value(node)


def literal_value(node: exp.Expression) -> Any:
    """Return the Python value of a literal SQL expression.

    Handles string and number literals, dollar-quoted strings, ``NULL``, booleans,
    negation, parentheses, ``ARRAY[...]`` and casts (``'…'::jsonb`` stays its text).

    Raises:
        Unreadable: the expression is computed (a column, a function call, ...).
    """
    if isinstance(node, exp.Cast | exp.Paren):
        return literal_value(node.this)
    if isinstance(node, exp.Array):
        return [literal_value(item) for item in node.expressions]
    if isinstance(node, exp.Neg):
        return -literal_value(node.this)
    if isinstance(node, exp.RawString):
        return node.this if isinstance(node.this, str) else node.name
    if isinstance(node, exp.Literal | exp.Null | exp.Boolean):
        return node.to_py()
    raise Unreadable(f"the argument {node.sql(dialect='postgres')!r} is not a literal")
