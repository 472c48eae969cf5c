"""Render :class:`~pgflow.compiler.statements.Call` objects to SQL through sqlglot ASTs.

Every literal goes through ``sqlglot.exp.Literal.string`` (quotes doubled), arrays through
``exp.Array`` and JSON through ``CAST('<canonical json>' AS JSONB)``: nothing is pasted
into SQL text, so no slug or pattern can inject SQL. Output is deterministic: it depends
only on the calls.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlglot import exp

from pgflow.compiler.statements import Call, Jsonb, SqlValue, TextArray

DIALECT = "postgres"
LINE_WIDTH = 100


def call_ast(call: Call) -> exp.Select:
    """Return ``SELECT pgflow.<function>(...)`` as a sqlglot AST."""
    arguments: list[exp.Expression] = [_value(value) for value in call.args]
    arguments += [
        exp.Kwarg(this=exp.var(name), expression=_value(value)) for name, value in call.kwargs
    ]
    function = exp.Anonymous(this=call.function, expressions=arguments)
    return exp.select(exp.Dot(this=exp.to_identifier("pgflow"), expression=function))


def render_call(call: Call) -> str:
    """Render one call without the trailing semicolon.

    A statement that fits in :data:`LINE_WIDTH` characters stays on one line; a longer one
    is pretty-printed with one argument per line.
    """
    ast = call_ast(call)
    flat = ast.sql(dialect=DIALECT)
    return flat if len(flat) <= LINE_WIDTH else ast.sql(dialect=DIALECT, pretty=True)


def render_script(header: Sequence[str], calls: Sequence[Call]) -> str:
    """Render a header comment and the calls as a SQL script (one statement per call).

    Args:
        header: comment lines, without the ``-- `` prefix; they must not contain newlines.
        calls: the statements, in order.

    Returns:
        The script text, ending with a newline.
    """
    lines = [f"-- {line}" for line in header]
    statements = [f"{render_call(call)};" for call in calls]
    return "\n".join(lines) + "\n\n" + "\n\n".join(statements) + "\n"


def _value(value: SqlValue) -> exp.Expression:
    if isinstance(value, bool):
        raise TypeError("booleans are not pgflow call arguments")
    if isinstance(value, int):
        return exp.Literal.number(value)
    if isinstance(value, str):
        return exp.Literal.string(value)
    if isinstance(value, TextArray):
        return exp.Array(expressions=[exp.Literal.string(item) for item in value.items])
    if isinstance(value, Jsonb):
        return exp.cast(exp.Literal.string(value.text), exp.DataType.Type.JSONB)
    raise TypeError(f"cannot render {value!r} as SQL")
