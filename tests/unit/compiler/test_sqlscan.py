"""The statement splitter understands Postgres quoting and comments."""

from __future__ import annotations

from pgflow.compiler.sqlscan import split_statements


def codes(text: str) -> list[str]:
    return [statement.code for statement in split_statements(text)]


def test_splits_on_top_level_semicolons_and_drops_blank_statements() -> None:
    assert codes("select 1;\n\n;select 2") == ["select 1", "select 2"]


def test_semicolons_inside_quotes_do_not_split() -> None:
    text = "select 'a;b', 'it''s;', E'x\\';y', \"we;ird\"; select 2"
    assert codes(text) == ["select 'a;b', 'it''s;', E'x\\';y', \"we;ird\"", "select 2"]


def test_dollar_quoted_bodies_stay_whole() -> None:
    text = "do $$ begin perform 1; end $$; create function f() as $fn$ select 1; $fn$; x"
    assert codes(text) == [
        "do $$ begin perform 1; end $$",
        "create function f() as $fn$ select 1; $fn$",
        "x",
    ]


def test_a_dollar_in_an_identifier_or_parameter_is_not_a_quote() -> None:
    assert codes("select a$b$c, $1; select 2") == ["select a$b$c, $1", "select 2"]


def test_comments_are_blanked_and_nested_block_comments_end_correctly() -> None:
    text = "select 1 -- a; comment\n, /* outer /* inner; */ still; */ 2; select 3"
    first, second = split_statements(text)
    assert "comment" not in first.code and "inner" not in first.code
    assert first.code.split() == ["select", "1", ",", "2"]
    assert second.code == "select 3"


def test_line_numbers_point_at_each_statement_start() -> None:
    text = "-- header\n\nselect 1;\n/* c */\n\nselect\n 2;"
    assert [s.line for s in split_statements(text)] == [3, 6]


def test_unterminated_quote_runs_to_the_end_without_crashing() -> None:
    assert codes("select 'oops; select 2") == ["select 'oops; select 2"]


def test_the_scan_text_blanks_string_literals_but_keeps_dollar_bodies_and_offsets() -> None:
    (statement,) = split_statements("'pgflow.x(' || E'pgflow.y(' || $$ pgflow.add_step( $$")
    assert len(statement.scan) == len(statement.code)
    assert "pgflow.x(" not in statement.scan and "pgflow.y(" not in statement.scan
    assert "pgflow.x(" in statement.code
    assert statement.scan.index("pgflow.add_step(") == statement.code.index("pgflow.add_step(")
