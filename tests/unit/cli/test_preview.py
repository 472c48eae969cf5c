"""One-line previews of values in `pgflow status`, markers spelled out."""

from __future__ import annotations

import json

from pgflow.cli._preview import format_size, marker_label, preview


def test_sizes() -> None:
    sizes = [0, 812, 1024, 1536, 16 * 2**20, 5 * 2**30, 3 * 2**40]
    assert [format_size(n) for n in sizes] == [
        "0 B", "812 B", "1.0 KiB", "1.5 KiB", "16.0 MiB", "5.0 GiB", "3.0 TiB"
    ]  # fmt: skip


def test_markers_are_labelled_wherever_they_are() -> None:
    truncated = {"$truncated": True, "bytes": 16 * 2**20}
    undecodable = {"$undecodable": True, "reason": "it is nested more than 200 levels deep",
                   "bytes": 10_000}  # fmt: skip
    assert marker_label(truncated) == "<truncated: 16.0 MiB>"
    assert marker_label(undecodable) == (
        "<undecodable: it is nested more than 200 levels deep, 9.8 KiB>"
    )
    assert preview({"a": [1, truncated], "b": undecodable}, 200) == (
        '{"a": [1, <truncated: 16.0 MiB>], '
        '"b": <undecodable: it is nested more than 200 levels deep, 9.8 KiB>}'
    )
    assert marker_label({"$truncated": True}) is None  # no size: an ordinary value
    assert marker_label({"$truncated": "yes", "bytes": 3}) is None


def test_previews_are_cut_to_width_and_render_only_what_fits() -> None:
    value = {"text": "x" * 10_000_000, "deep": json.loads("[" * 900 + "]" * 900)}
    shown = preview(value, 40)
    assert len(shown) == 40 and shown.endswith("…") and shown.startswith('{"text": "xxx')
    assert preview(json.loads("[" * 900 + "]" * 900), 10) == "[[[[[[[[[…"
    assert preview({"a": 1, "b": [None, True, 1.5, "é"]}) == '{"a": 1, "b": [null, true, 1.5, "é"]}'
