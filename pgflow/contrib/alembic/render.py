"""Python source for the pgflow operations: autogenerate renderers and string literals.

The renderers are registered on alembic's ``renderers`` dispatcher when this module is
imported (by :func:`pgflow.contrib.alembic.plugin.setup`). Compiled SQL is rendered as one
double-quoted literal per SQL line, inside parentheses: alembic re-indents every line of
the code it renders, which would change the text of a triple-quoted string.
"""

from __future__ import annotations

import json
import re

from alembic.autogenerate.api import AutogenContext
from alembic.autogenerate.render import renderers

from pgflow.contrib.alembic.ops import ApplyFlowOp, InstallOp, RemoveFlowOp, UninstallOp

__all__ = ["IMPORT_LINE", "block_literal", "line_literals"]

IMPORT_LINE = "import pgflow.contrib.alembic.ops  # noqa: F401 - registers op.pgflow_*"
"""The import a revision needs so that ``op.pgflow_*`` exists even without the plugin."""

_LINES = re.compile(r"[^\n]*\n|[^\n]+$")


def line_literals(text: str, indent: str = "    ") -> str:
    """Return Python source for ``text``: one ``"..."`` literal per line, each on its own line.

    Adjacent literals concatenate, so the source evaluates to exactly ``text``. JSON string
    syntax is valid Python string syntax, and it always uses double quotes.
    """
    lines = _LINES.findall(text) or [""]
    return "\n".join(indent + _escaped(json.dumps(line, ensure_ascii=False)) for line in lines)


def _escaped(literal: str) -> str:
    """Escape what JSON leaves raw but a reader would not see (DEL, U+2028, ...)."""
    return "".join(ch if ch.isprintable() else f"\\U{ord(ch):08x}" for ch in literal)


def block_literal(text: str, indent: str = "    ") -> str:
    """Return Python source for ``text``: a readable triple-quoted literal when that is exact.

    Falls back to :func:`line_literals` in parentheses when the text holds a backslash,
    ``\"\"\"``, a trailing quote or a control character other than newline and tab.
    """
    risky = "\\" in text or '"""' in text or text.endswith('"')
    if risky or any(not ch.isprintable() and ch not in "\n\t" for ch in text):
        return "(\n" + line_literals(text, indent + "    ") + "\n" + indent + ")"
    return '"""\\\n' + text + '"""'


def _use_import(autogen_context: AutogenContext) -> None:
    autogen_context.imports.add(IMPORT_LINE)


@renderers.dispatch_for(ApplyFlowOp)
def _render_apply_flow(autogen_context: AutogenContext, op: ApplyFlowOp) -> str:
    _use_import(autogen_context)
    return f"op.pgflow_apply_flow(\n{line_literals(op.sql)},\n    {json.dumps(op.slug)},\n)"


@renderers.dispatch_for(RemoveFlowOp)
def _render_remove_flow(autogen_context: AutogenContext, op: RemoveFlowOp) -> str:
    _use_import(autogen_context)
    return f"op.pgflow_remove_flow({json.dumps(op.slug)})"


@renderers.dispatch_for(InstallOp)
def _render_install(autogen_context: AutogenContext, op: InstallOp) -> str:
    _use_import(autogen_context)
    return "op.pgflow_install()" if op.migration is None else f"op.pgflow_install({op.migration})"


@renderers.dispatch_for(UninstallOp)
def _render_uninstall(autogen_context: AutogenContext, op: UninstallOp) -> str:
    _use_import(autogen_context)
    return "op.pgflow_uninstall()"
