"""Immutable views of runs and their steps, as clients and the CLI see them.

:class:`Run` and :class:`StepState` are frozen pydantic models built from what the SQL
core returns (``pgflow.get_run_with_states`` or a ``pgflow.runs`` row). Row dicts never
leak past this module: everything else works with these models.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any, Literal, get_args
from uuid import UUID

from pydantic import BaseModel, ConfigDict

from pgflow.errors import RunCancelledError, RunFailedError

__all__ = ["RUN_STATUSES", "STEP_STATUSES", "Run", "RunStatus", "StepState", "StepStatus"]

RunStatus = Literal["started", "completed", "failed", "cancelled"]
StepStatus = Literal["created", "started", "completed", "failed", "skipped", "cancelled"]
RUN_STATUSES: tuple[str, ...] = get_args(RunStatus)
STEP_STATUSES: tuple[str, ...] = get_args(StepStatus)
_FINISHED = frozenset({"completed", "failed", "cancelled"})
_STATUS_HINT = "`pgflow status <run id>` shows every step with its error and attempts"


def _pick(model: type[BaseModel], row: Mapping[str, Any]) -> dict[str, Any]:
    """Keep the keys ``model`` declares: the SQL side may add columns over time."""
    return {name: row[name] for name in model.model_fields if name in row}


def _elapsed(start: datetime | None, *ends: datetime | None) -> timedelta | None:
    end = next((e for e in ends if e is not None), None)
    if start is None or end is None:
        return None
    return end - start


class StepState(BaseModel):
    """The state of one step of a run.

    Attributes:
        step_slug: the step's slug.
        step_type: ``"single"`` or ``"map"``.
        status: ``created``, ``started``, ``completed``, ``failed``, ``skipped`` or
            ``cancelled``.
        output: the step's output once completed (a list for map steps).
        error_message: why the step failed (type, message, attempt), or None.
        error_type: the qualified exception type of the failing task, or None.
        error_traceback: the formatted traceback of the failing task, or None.
        skip_reason: why the step was skipped, or None.
        attempts: the highest attempt number among its tasks (0: never claimed).
        tasks: how many of its tasks are in each status, e.g. ``{"completed": 3}``.
        initial_tasks: how many tasks the step has (None until it starts).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    step_slug: str
    step_type: Literal["single", "map"] = "single"
    status: StepStatus
    output: Any = None
    error_message: str | None = None
    error_type: str | None = None
    error_traceback: str | None = None
    skip_reason: str | None = None
    attempts: int = 0
    tasks: dict[str, int] = {}
    initial_tasks: int | None = None
    created_at: datetime | None = None
    started_at: datetime | None = None
    completed_at: datetime | None = None
    failed_at: datetime | None = None
    skipped_at: datetime | None = None
    cancelled_at: datetime | None = None

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> StepState:
        """Build a step state from one entry of ``get_run_with_states()['steps']``."""
        return cls.model_validate(_pick(cls, row))

    @property
    def is_finished(self) -> bool:
        """Whether the step reached a terminal status."""
        return self.status not in ("created", "started")

    @property
    def finished_at(self) -> datetime | None:
        """When the step reached its terminal status, or None."""
        ends = (self.completed_at, self.failed_at, self.skipped_at, self.cancelled_at)
        return next((e for e in ends if e is not None), None)

    @property
    def duration(self) -> timedelta | None:
        """From start to finish, or None when it has not started or not finished."""
        return _elapsed(self.started_at, self.finished_at)


class Run(BaseModel):
    """A run of a flow: its status, input, output, timestamps and steps.

    Attributes:
        run_id: the run's id.
        flow_slug: the flow it runs.
        status: ``started``, ``completed``, ``failed`` or ``cancelled``.
        input: the run input as stored (JSON).
        output: ``{leaf_step: output}`` once completed, else None.
        error_message: why the run failed or was cancelled, or None.
        steps: the steps in definition order; empty when the run came from a listing
            (:meth:`pgflow.Client.runs`) or a start.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    run_id: UUID
    flow_slug: str
    status: RunStatus
    input: Any = None
    output: Any = None
    error_message: str | None = None
    started_at: datetime | None = None
    completed_at: datetime | None = None
    failed_at: datetime | None = None
    cancelled_at: datetime | None = None
    finished_at: datetime | None = None
    steps: tuple[StepState, ...] = ()

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Run:
        """Build a run (without steps) from a ``pgflow.runs`` row."""
        return cls.model_validate(_pick(cls, row))

    @classmethod
    def from_states(cls, document: Mapping[str, Any]) -> Run:
        """Build a run with its steps from ``pgflow.get_run_with_states()``."""
        steps = tuple(StepState.from_row(step) for step in document.get("steps") or ())
        return cls.model_validate({**_pick(cls, document["run"]), "steps": steps})

    @property
    def is_finished(self) -> bool:
        """Whether the run is completed, failed or cancelled."""
        return self.status in _FINISHED

    @property
    def duration(self) -> timedelta | None:
        """From start to finish, or None while the run is live."""
        return _elapsed(self.started_at, self.finished_at)

    @property
    def failed_step(self) -> StepState | None:
        """The step whose failure failed the run, or None."""
        return next((s for s in self.steps if s.status == "failed"), None)

    def step(self, step_slug: str) -> StepState:
        """Return the state of one step.

        Raises:
            KeyError: the run has no such step (or was built without its steps).
        """
        for state in self.steps:
            if state.step_slug == step_slug:
                return state
        known = ", ".join(s.step_slug for s in self.steps) or "none loaded"
        raise KeyError(f"run {self.run_id} has no step {step_slug!r} (steps: {known})")

    def raise_for_status(self) -> Run:
        """Return this run if it did not fail or get cancelled; raise otherwise.

        Raises:
            RunFailedError: it failed; ``step_slug``, ``error_message`` and ``error_type``
                name the step whose failure failed the run, ``run`` is this run.
            RunCancelledError: it was cancelled; ``run`` is this run.
        """
        if self.status == "cancelled":
            raise RunCancelledError(
                f"run {self.run_id} of flow {self.flow_slug!r} was cancelled",
                hint=_STATUS_HINT.replace("<run id>", str(self.run_id)),
                run=self,
                run_id=self.run_id,
                flow_slug=self.flow_slug,
            )
        if self.status == "failed":
            raise self._failure()
        return self

    def _failure(self) -> RunFailedError:
        step = self.failed_step
        message = step.error_message if step else self.error_message
        where = f" at step {step.step_slug!r}" if step else ""
        hint = _STATUS_HINT.replace("<run id>", str(self.run_id))
        return RunFailedError(
            f"run {self.run_id} of flow {self.flow_slug!r} failed{where}: {message}",
            hint=f"{hint}; the failing task's traceback is stored with it",
            run=self,
            run_id=self.run_id,
            flow_slug=self.flow_slug,
            step_slug=step.step_slug if step else None,
            error_message=message,
            error_type=step.error_type if step else None,
        )
