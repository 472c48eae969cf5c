"""Split a SQL file into statements the way Postgres' lexer would.

sqlglot's tokenizer does not treat ``$$`` after ``DO`` as a dollar quote, so splitting on
its semicolon tokens breaks ``DO`` blocks. This scanner knows the quoting
rules that matter for splitting: ``'…'`` (``''`` escapes), ``E'…'`` (backslash escapes),
``"…"``, ``$tag$…$tag$``, ``-- …`` and nested ``/* … */`` comments (Postgres docs,
"Lexical Structure"). Comments are blanked out (newlines kept, so line numbers hold).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_DOLLAR_TAG = re.compile(r"\$([A-Za-z_\x80-\U0010ffff][A-Za-z0-9_\x80-\U0010ffff]*)?\$")


@dataclass(frozen=True, slots=True)
class Statement:
    """One statement.

    Attributes:
        code: its text with comments blanked (what a parser should read).
        scan: the same text with string literals blanked too (what a text search for
            function calls should read: a call spelled inside ``'…'`` is not a call, one
            inside a ``$$…$$`` body may be).
        line: the line it starts on (1-based).
    """

    code: str
    scan: str
    line: int


def split_statements(text: str) -> list[Statement]:
    """Split ``text`` at top-level semicolons into non-blank statements.

    Args:
        text: a SQL script.

    Returns:
        The statements in order, each without its semicolon.
    """
    scanner = _Scanner(text)
    return scanner.run()


class _Scanner:
    def __init__(self, text: str) -> None:
        self.text = text
        self.code: list[str] = []  # the statement being read, comments blanked
        self.scan: list[str] = []  # the same, string literals blanked too
        self.start = 0  # offset where it starts
        self.statements: list[Statement] = []

    def run(self) -> list[Statement]:
        i = 0
        while i < len(self.text):
            i = self._step(i)
        self._emit(len(self.text))
        return self.statements

    def _step(self, i: int) -> int:
        text, ch = self.text, self.text[i]
        if text.startswith("--", i):
            return self._blank(i, _line_end(text, i))
        if text.startswith("/*", i):
            return self._blank(i, _comment_end(text, i))
        if ch == ";":
            self._emit(i)
            self.start = i + 1
            return i + 1
        end = self._quoted_end(i)
        self.code.append(text[i:end])
        self.scan.append(_blanked(text[i:end]) if ch == "'" else text[i:end])
        return end

    def _quoted_end(self, i: int) -> int:
        text, ch = self.text, self.text[i]
        if ch == "'":
            return _string_end(text, i, backslashes=_is_escape_string(text, i))
        if ch == '"':
            return _string_end(text, i, backslashes=False)
        if ch == "$" and not _ident_before(text, i):
            match = _DOLLAR_TAG.match(text, i)
            if match:
                close = text.find(match.group(0), match.end())
                return len(text) if close < 0 else close + len(match.group(0))
        return i + 1

    def _blank(self, start: int, end: int) -> int:
        blank = _blanked(self.text[start:end])
        self.code.append(blank)
        self.scan.append(blank)
        return end

    def _emit(self, end: int) -> None:
        code, scan = "".join(self.code), "".join(self.scan)
        self.code, self.scan = [], []
        if code.strip():
            leading = len(code) - len(code.lstrip())
            end = len(code.rstrip())
            line = self.text.count("\n", 0, self.start + leading) + 1
            self.statements.append(Statement(code[leading:end], scan[leading:end], line))


def _blanked(text: str) -> str:
    return re.sub(r"[^\n]", " ", text)


def _line_end(text: str, i: int) -> int:
    end = text.find("\n", i)
    return len(text) if end < 0 else end


def _comment_end(text: str, i: int) -> int:
    depth, i = 1, i + 2
    while i < len(text) and depth:
        if text.startswith("/*", i):
            depth, i = depth + 1, i + 2
        elif text.startswith("*/", i):
            depth, i = depth - 1, i + 2
        else:
            i += 1
    return i


def _string_end(text: str, i: int, *, backslashes: bool) -> int:
    quote, i = text[i], i + 1
    while i < len(text):
        if backslashes and text[i] == "\\":
            i += 2
        elif text[i] == quote:
            if not text.startswith(quote * 2, i):
                return i + 1
            i += 2
        else:
            i += 1
    return len(text)


def _is_escape_string(text: str, i: int) -> bool:
    return i > 0 and text[i - 1] in "eE" and not _ident_before(text, i - 1)


def _ident_before(text: str, i: int) -> bool:
    return i > 0 and (text[i - 1].isalnum() or text[i - 1] in "_$")
