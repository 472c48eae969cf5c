"""Log labels: a map task is ``step[index]`` for every index, a single step is ``step``."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from pgflow._words import counted
from pgflow.worker.store import ClaimedTask


def _task(index: int, *, is_map: bool) -> ClaimedTask:
    now = datetime.now(UTC)
    return ClaimedTask(uuid.uuid4(), "f", "items", index, 1, 1, {}, now, is_map=is_map)


def test_every_map_task_is_labelled_with_its_index_including_the_first() -> None:
    assert [_task(i, is_map=True).label for i in range(3)] == ["items[0]", "items[1]", "items[2]"]


def test_a_single_step_task_is_labelled_with_its_slug() -> None:
    assert _task(0, is_map=False).label == "items"


def test_counts_agree_in_number() -> None:
    assert [counted(n, "step") for n in (0, 1, 2)] == ["0 steps", "1 step", "2 steps"]
    assert counted(1, "run") == "1 run" and counted(3, "entry", "entries") == "3 entries"
