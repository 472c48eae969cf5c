"""``StepDefinition``: one step of a flow, with everything the worker needs decided already."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from pydantic import TypeAdapter, ValidationError
from pydantic_core import PydanticSerializationError

from pgflow.dsl.binding import ParameterBinding, build_arguments
from pgflow.dsl.compat import TypeSchema
from pgflow.dsl.context import Context
from pgflow.dsl.limits import LimitEntry
from pgflow.dsl.options import Options, WhenMode, Where
from pgflow.errors import InvalidInputError

if TYPE_CHECKING:
    from pgflow.dsl.builder import StepSpec

StepType = Literal["single", "map"]


@dataclass(frozen=True, kw_only=True, slots=True)
class StepDefinition:
    """One step of a flow. Built by ``Flow.step`` / ``Flow.map`` / ``Flow.array``.

    Attributes:
        flow_slug: the flow this step belongs to.
        slug: the step's slug.
        handler: the user's function, unchanged.
        is_async: whether calling ``handler`` returns an awaitable.
        step_type: ``"map"`` runs one task per array element; otherwise ``"single"``.
        deps: the slugs this step depends on, in the order given.
        returns_array: whether the output must be a list (``Flow.array`` steps).
        max_attempts: effective attempts (the step's option, else the flow's).
        base_delay: effective retry base delay in seconds.
        timeout: effective task timeout in seconds.
        start_delay: seconds to wait before the step's tasks become ready.
        options: the options exactly as given (``UNSET`` = inherit / SQL default).
        required_input_pattern: the ``if_`` pattern, or None.
        forbidden_input_pattern: the ``if_not`` pattern, or None.
        when_unmet: what happens when the condition does not hold.
        when_exhausted: what happens when the retries run out.
        parameters: how each handler parameter is filled.
        return_annotation: the handler's return annotation (``inspect.Parameter.empty``
            when it has none); for a map step, the type of one element's result.
        output_adapter: validates and serialises one task's return value.
        output_schema: the JSON schema of the step's output (a list for maps), or None
            when the handler has no return annotation.
        spec: what the user wrote, unchecked (``pgflow.testing`` rebuilds a step from it
            with another handler, so the same definition rules apply to a fake).
        concurrency: the step's concurrency limit, or None.
        rate_limit: the step's rate limit, or None.
    """

    flow_slug: str
    slug: str
    handler: Callable[..., Any]
    is_async: bool
    step_type: StepType
    deps: tuple[str, ...]
    returns_array: bool
    max_attempts: int
    base_delay: int
    timeout: int
    start_delay: int
    options: Options
    required_input_pattern: dict[str, Any] | None
    forbidden_input_pattern: dict[str, Any] | None
    when_unmet: WhenMode
    when_exhausted: WhenMode
    parameters: tuple[ParameterBinding, ...]
    return_annotation: Any
    output_adapter: TypeAdapter[Any]
    output_schema: TypeSchema | None
    spec: StepSpec | None = field(default=None, repr=False, compare=False)
    concurrency: LimitEntry | None = None
    rate_limit: LimitEntry | None = None

    @property
    def where(self) -> Where:
        """Where this step is, for messages."""
        return Where(self.flow_slug, self.slug)

    @property
    def may_be_skipped(self) -> bool:
        """Whether dependents can run without this step's output (mode ``"skip"``)."""
        has_condition = self.required_input_pattern is not None or (
            self.forbidden_input_pattern is not None
        )
        return (has_condition and self.when_unmet == "skip") or self.when_exhausted == "skip"

    def build_arguments(self, task_input: Any, flow_input: Any, context: Context) -> dict[str, Any]:
        """Build the handler's keyword arguments for one claimed task.

        Args:
            task_input: the ``input`` column ``claim_tasks`` returned: the flow input for a
                root single step, ``{dep_slug: output, ...}`` for a dependent single step
                (a skipped dependency's key is absent), one element for a map step.
            flow_input: the run's input.
            context: the task's context.

        Returns:
            Keyword arguments, each parsed into its parameter's annotated type.

        Raises:
            InvalidInputError: a value does not fit its parameter (naming flow and step).
        """
        return build_arguments(self.parameters, task_input, flow_input, context, self.where)

    def dump_output(self, value: Any) -> Any:
        """Validate one task's return value and return it as a JSON-compatible value.

        Args:
            value: what the handler returned (awaited, for async handlers).

        Returns:
            ``value`` validated against the return annotation, as JSON-compatible Python.

        Raises:
            InvalidInputError: it does not match the return annotation, cannot be turned
                into JSON, or (for ``array`` steps) is not a list.
        """
        try:
            dumped = self.output_adapter.dump_python(
                self.output_adapter.validate_python(value), mode="json"
            )
        except (ValidationError, PydanticSerializationError) as exc:
            raise self._bad_output(f"does not match its return annotation: {exc}") from exc
        if self.returns_array and not isinstance(dumped, list):
            raise self._bad_output(f"must be a list, got {type(value).__name__}")
        return dumped

    def _bad_output(self, problem: str) -> InvalidInputError:
        return InvalidInputError(
            f"{self.where}: the handler's return value {problem}",
            hint="return a value of the annotated type (array steps return a list)",
            flow_slug=self.flow_slug,
            step_slug=self.slug,
        )
