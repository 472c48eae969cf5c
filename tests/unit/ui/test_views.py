"""What the pages show: value previews (capped, markers), map progress (counts, capped list)."""

from __future__ import annotations

from typing import Any

from pgflow.ui.views import FAILED_SHOWN, PREVIEW_CHARS, map_progress, preview_of


def test_a_preview_is_indented_json_with_its_size() -> None:
    shown = preview_of({"b": [1, 2], "a": "<x>"}, 27)
    assert shown is not None
    assert shown.text == '{\n  "b": [\n    1,\n    2\n  ],\n  "a": "<x>"\n}'
    assert (shown.size, shown.cut, shown.marker) == ("27 B", 0, False)
    assert preview_of(None, None) is None


def test_a_long_value_is_cut_and_says_how_much_is_left_out() -> None:
    shown = preview_of(["x" * 10_000], 10_006)
    assert shown is not None
    assert len(shown.text) == PREVIEW_CHARS
    assert shown.cut == len('[\n  "' + "x" * 10_000 + '"\n]') - PREVIEW_CHARS
    assert shown.size == "9.8 KiB"


def test_markers_of_huge_and_undecodable_values_read_as_labels() -> None:
    huge = preview_of({"$truncated": True, "bytes": 16 * 1024 * 1024}, 16 * 1024 * 1024)
    assert huge is not None and huge.marker and huge.text == "<truncated: 16.0 MiB>"
    odd = preview_of({"$undecodable": True, "reason": "too deep", "bytes": 2048}, 2048)
    assert odd is not None and odd.text == "<undecodable: too deep, 2.0 KiB>"


def map_step(tasks: dict[str, int], total: int | None) -> dict[str, Any]:
    return {"step_slug": "m", "tasks": tasks, "initial_tasks": total}


def test_map_progress_counts_elements_and_draws_proportional_segments() -> None:
    progress = map_progress(
        map_step({"completed": 7_500, "queued": 2_000, "failed": 500}, 10_000), []
    )
    assert progress.done == 8_000
    assert [(s.status, s.x, s.width) for s in progress.segments] == [
        ("completed", 0.0, 75.0),
        ("failed", 75.0, 5.0),
        ("queued", 80.0, 20.0),
    ]
    assert progress.failed_total == 500


def test_map_progress_lists_only_the_first_failed_elements_of_its_step() -> None:
    errors = [
        {"step_slug": "m", "task_index": i, "status": "failed", "error_message": "x"}
        for i in range(FAILED_SHOWN + 5)
    ]
    errors.append({"step_slug": "other", "task_index": 0, "status": "failed", "error_message": "y"})
    errors.append({"step_slug": "m", "task_index": 99, "status": "queued", "error_message": "z"})
    progress = map_progress(map_step({"failed": 900}, 1_000), errors)
    assert [e["task_index"] for e in progress.failed] == list(range(FAILED_SHOWN))
    assert progress.failed_total == 900


def test_a_map_that_has_not_started_has_no_total() -> None:
    progress = map_progress(map_step({}, None), [])
    assert (progress.total, progress.segments, progress.done) == (None, (), 0)
