"""Python literals for frozen SQL evaluate back to exactly the SQL, whatever it holds."""

from __future__ import annotations

import ast

import pytest

from pgflow.contrib.alembic.render import block_literal, line_literals

TEXTS = [
    "",
    "select 1;\n",
    "select 1",
    "select '{\"ok\": true}'::jsonb;\n\nselect '{\"a\":1}';\n",
    'ends with a quote"',
    'three """ quotes',
    "back\\slash and E'\\n'",
    "tab\there, CR\r\n, form feed\x0c, DEL\x7f, unicode é ✓ \u2028 \U0001f600 end\n",
]


@pytest.mark.parametrize("text", TEXTS)
def test_line_literals_evaluate_to_the_text(text: str) -> None:
    source = line_literals(text)

    assert ast.literal_eval("(\n" + source + "\n)") == text
    assert all(line.startswith('    "') for line in source.splitlines())


@pytest.mark.parametrize("text", TEXTS)
def test_block_literal_evaluates_to_the_text(text: str) -> None:
    assert ast.literal_eval(block_literal(text)) == text


def test_block_literal_is_a_readable_triple_quoted_string_for_compiled_sql() -> None:
    sql = "SELECT pgflow.create_flow('x', shape => CAST('{\"a\": 1}' AS JSONB));\n"

    assert block_literal(sql) == '"""\\\n' + sql + '"""'
