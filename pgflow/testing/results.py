"""What a test asks about a finished run: tasks, attempts, map elements, skips.

:class:`TaskState` is one task of a run as stored (``pgflow.step_tasks``): a single step has
one task, a map step one per element. The functions below read a :class:`~pgflow.Run` and
its tasks and fail with a message that shows what happened instead::

    assert_skipped(run, "summary", reason="website")
    assert attempts(tasks, "website") == 3
    assert map_outputs(tasks, "check_link") == [200, None, 200]
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from pgflow.models import Run, StepState

__all__ = [
    "TaskState",
    "TaskStatus",
    "assert_skipped",
    "attempts",
    "map_errors",
    "map_outputs",
    "step_tasks",
]

TaskStatus = Literal["queued", "started", "completed", "failed", "cancelled"]


class TaskState(BaseModel):
    """One task of a run.

    Attributes:
        step_slug: its step.
        task_index: 0 for a single step; the element's index for a map step.
        status: ``queued``, ``started``, ``completed``, ``failed`` or ``cancelled``.
        attempts: how many times it was handed to a handler (``ctx.attempt`` of the last).
        input: the array element of a map task; None for single steps.
        output: what the handler returned, once completed.
        error_message: the last attempt's error, or None.
        error_type: the qualified exception type of the last error, or None.
        error_traceback: the formatted traceback of the last error, or None.
    """

    model_config = ConfigDict(frozen=True, extra="ignore")

    step_slug: str
    task_index: int
    status: TaskStatus
    attempts: int
    input: Any = None
    output: Any = None
    error_message: str | None = None
    error_type: str | None = None
    error_traceback: str | None = None


def step_tasks(tasks: Sequence[TaskState], step_slug: str) -> list[TaskState]:
    """The tasks of one step, in element order.

    Raises:
        AssertionError: the step has no task (never started, skipped, or no such step).
    """
    found = [t for t in tasks if t.step_slug == step_slug]
    if not found:
        steps = sorted({t.step_slug for t in tasks})
        raise AssertionError(
            f"step {step_slug!r} has no task in this run (steps with tasks: "
            f"{', '.join(steps) or 'none'}): it never started, was skipped, or does not exist"
        )
    return found


def attempts(tasks: Sequence[TaskState], step_slug: str, task_index: int | None = None) -> int:
    """How many attempts a step made: all its tasks' together, or one task's.

    Raises:
        AssertionError: the step (or that task of it) has no task in the run.
    """
    found = step_tasks(tasks, step_slug)
    if task_index is None:
        return sum(t.attempts for t in found)
    for task in found:
        if task.task_index == task_index:
            return task.attempts
    raise AssertionError(f"step {step_slug!r} has no task {task_index} (it has {len(found)})")


def map_outputs(tasks: Sequence[TaskState], step_slug: str) -> list[Any]:
    """Each element's result in element order; None for an element that did not complete."""
    return [t.output if t.status == "completed" else None for t in step_tasks(tasks, step_slug)]


def map_errors(tasks: Sequence[TaskState], step_slug: str) -> dict[int, str]:
    """``{element index: last error}`` of the elements whose last attempt failed."""
    return {
        t.task_index: t.error_message
        for t in step_tasks(tasks, step_slug)
        if t.error_message is not None and t.status != "completed"
    }


def assert_skipped(run: Run, step_slug: str, reason: str | None = None) -> StepState:
    """Assert that a step was skipped (and, given ``reason``, that its reason contains it).

    Returns:
        The step's state, for further checks.

    Raises:
        AssertionError: the step ran, failed, is unknown, or was skipped for another reason;
            the message shows the step's status and skip reason.
    """
    try:
        step = run.step(step_slug)
    except KeyError as exc:
        raise AssertionError(exc.args[0]) from None
    if step.status != "skipped":
        raise AssertionError(
            f"step {step_slug!r} was not skipped: its status is {step.status!r}"
            + (f" ({step.error_message})" if step.error_message else "")
        )
    if reason is not None and reason not in (step.skip_reason or ""):
        raise AssertionError(
            f"step {step_slug!r} was skipped, but its reason {step.skip_reason!r} does not "
            f"contain {reason!r}"
        )
    return step
