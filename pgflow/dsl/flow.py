"""``Flow``: the typed builder users write flows with (decorators and fluent calls)."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any, ClassVar, TypedDict, TypeVar, Unpack, overload

from pydantic import TypeAdapter, ValidationError
from pydantic.errors import PydanticUserError
from pydantic_core import PydanticSerializationError

from pgflow.dsl._unset import UNSET, Unset, or_default
from pgflow.dsl.binding import adapter_for
from pgflow.dsl.builder import StepKind, StepSpec, define_step
from pgflow.dsl.compat import TypeSchema, schema_of
from pgflow.dsl.limits import Limit, LimitEntry, RateLimit, check_concurrency
from pgflow.dsl.options import (
    FLOW_DEFAULTS,
    Options,
    WhenMode,
    Where,
    check_options,
    check_priority,
    check_retention,
)
from pgflow.dsl.schedules import CatchUp, Schedule, check_schedule
from pgflow.dsl.slugs import check_slug
from pgflow.dsl.step import StepDefinition
from pgflow.errors import DefinitionError, InvalidInputError

F = TypeVar("F", bound=Callable[..., Any])
Ref = str | Callable[..., Any] | StepDefinition


class StepOptions(TypedDict, total=False):
    """Keyword options of ``Flow.step`` / ``Flow.array`` (all optional)."""

    depends_on: Ref | Sequence[Ref]
    max_attempts: int
    base_delay: int
    timeout: int
    start_delay: int
    if_: dict[str, Any]
    if_not: dict[str, Any]
    when_unmet: WhenMode
    when_exhausted: WhenMode
    concurrency: int | Limit
    rate_limit: str | RateLimit


class MapOptions(StepOptions, total=False):
    """Keyword options of ``Flow.map``: those of a step plus ``array``."""

    array: Ref | None


_OPTION_NAMES = ("max_attempts", "base_delay", "timeout", "start_delay")


class Flow:
    """A workflow: a DAG of steps with a slug, an optional input model and options.

    Steps are added with decorators (``@flow.step()``, ``@flow.map()``, ``@flow.array()``)
    or fluently (``flow.step("slug", handler)``). Both forms **mutate this flow and**, in
    the fluent form, **return it**, so calls chain. A step may depend only on steps defined
    before it, so cycles cannot be written.

    Args:
        slug: the flow's slug (letters, digits, ``_``; at most 128 characters).
        input: the type of the run input, usually a pydantic model (a list type such as
            ``list[str]`` when a root ``map`` step maps over the input); None = any JSON.
        max_attempts: attempts per task, counting the first (default 3).
        base_delay: retry delay base in seconds; retry n waits ``base_delay * 2**n`` (default 1).
        timeout: seconds a task may run before its lease expires (default 60).
        retention: how long to keep finished runs, e.g. ``"30d"`` (units s, m, h, d, w);
            workers prune older ones. None (the default) keeps them until pruned by hand.
        priority: the default priority of the flow's runs, -100 to 100 (default 0); tasks
            of higher priorities are claimed first (docs/runs.md, "Priorities").
        concurrency: at most this many tasks of the flow leased at once, across all
            workers: an int, or ``pgflow.Limit(n, key="field")`` for n per distinct value of
            that input field (docs/flow-control.md). None (the default): no limit.

    Raises:
        InvalidSlugError: the slug is invalid.
        DefinitionError: an option or the retention is out of range, or the input type is
            not validatable.
    """

    _created: ClassVar[itertools.count[int]] = itertools.count()

    def __init__(
        self,
        slug: str,
        *,
        input: Any = None,
        max_attempts: int | Unset = UNSET,
        base_delay: int | Unset = UNSET,
        timeout: int | Unset = UNSET,
        retention: str | None = None,
        priority: int = 0,
        concurrency: int | Limit | None = None,
    ) -> None:
        self._slug = check_slug(slug, kind="flow")
        where = Where(self._slug)
        self._options = check_options(
            where, max_attempts=max_attempts, base_delay=base_delay, timeout=timeout
        )
        self._retention = check_retention(where, retention)
        self._priority = check_priority(where, priority)
        self._input_model = input
        self._input_adapter = None if input is None else adapter_for(input, where, "the input")
        self._input_schema = None if input is None else schema_of(input, "serialization")
        self._concurrency = check_concurrency(where, concurrency, self.input_json_schema)
        self._steps: dict[str, StepDefinition] = {}
        self._schedules: dict[str, Schedule] = {}
        self.creation_order = next(Flow._created)

    def __repr__(self) -> str:
        return f"<Flow {self._slug!r} steps={[s.slug for s in self._steps.values()]}>"

    @property
    def slug(self) -> str:
        """The flow's slug."""
        return self._slug

    @property
    def steps(self) -> tuple[StepDefinition, ...]:
        """The steps, in definition order (which is a topological order)."""
        return tuple(self._steps.values())

    @property
    def input_model(self) -> Any:
        """The type given as ``input`` (usually a pydantic model class), or None."""
        return self._input_model

    @property
    def input_schema(self) -> TypeSchema | None:
        """The JSON schema of a serialised flow input, or None when unknown."""
        return self._input_schema

    @property
    def input_json_schema(self) -> dict[str, Any] | None:
        """The JSON Schema a run input must match (pydantic's validation schema, with its
        ``$defs``), stored with the flow on deploy; None when the flow takes any JSON."""
        if self._input_adapter is None:
            return None
        try:
            schema: dict[str, Any] = self._input_adapter.json_schema(mode="validation")
        except (PydanticUserError, TypeError, ValueError):  # a type without a JSON Schema
            return None
        return schema or None  # {} (Any) accepts everything: nothing to check

    @property
    def retention(self) -> timedelta | None:
        """How long finished runs are kept (None: until pruned by hand)."""
        return self._retention

    @property
    def priority(self) -> int:
        """The default priority of the flow's runs (higher first; 0 by default)."""
        return self._priority

    @property
    def limits(self) -> tuple[LimitEntry, ...]:
        """The flow's and its steps' concurrency and rate limits (flow first, then steps
        in definition order)."""
        per_step = (limit for s in self._steps.values() for limit in (s.concurrency, s.rate_limit))
        return tuple(x for x in (self._concurrency, *per_step) if x is not None)

    @property
    def schedules(self) -> tuple[Schedule, ...]:
        """The schedules, in the order they were added."""
        return tuple(self._schedules.values())

    def schedule(
        self,
        cron: str,
        *,
        input: Any = None,
        timezone: str = "UTC",
        catch_up: CatchUp = "latest",
        name: str = "default",
    ) -> Flow:
        """Start a run on a cron timetable; returns the flow, so calls chain.

        Deployed with the flow as runtime configuration (changing it is not a shape
        change). Every running worker that serves the flow starts each due tick, exactly
        once across all of them. See docs/schedules.md.

        Args:
            cron: five cron fields, e.g. ``"*/5 * * * *"`` (every five minutes).
            input: the run input of every tick, validated against the input model now.
            timezone: the IANA time zone the expression is read in (DST handled like cron).
            catch_up: after downtime, start the ``"latest"`` missed tick, ``"all"`` of them,
                or ``"none"`` (only ticks at most a minute late).
            name: tells several schedules of one flow apart.

        Raises:
            DefinitionError: an invalid expression, zone, policy, name or input, or a second
                schedule with the same name.
        """
        where = Where(self._slug)
        if name in self._schedules:
            raise where.error(
                f"a schedule named {name!r} already exists",
                "give each schedule of a flow its own name=...",
            )
        try:
            value = self.dump_input(input)
        except InvalidInputError as exc:
            raise where.error(f"invalid schedule input: {exc.message}", exc.hint or "") from exc
        self._schedules[name] = check_schedule(
            where, cron, name=name, timezone=timezone, catch_up=catch_up, input=value
        )
        return self

    @property
    def options(self) -> Options:
        """The options exactly as given (``UNSET`` = the SQL default)."""
        return self._options

    @property
    def max_attempts(self) -> int:
        """Effective attempts per task (default 3)."""
        return or_default(self._options.max_attempts, FLOW_DEFAULTS["max_attempts"])

    @property
    def base_delay(self) -> int:
        """Effective retry base delay in seconds (default 1)."""
        return or_default(self._options.base_delay, FLOW_DEFAULTS["base_delay"])

    @property
    def timeout(self) -> int:
        """Effective task timeout in seconds (default 60)."""
        return or_default(self._options.timeout, FLOW_DEFAULTS["timeout"])

    def has_step(self, slug: str) -> bool:
        """Whether a step with this slug is defined."""
        return slug in self._steps

    def get_step(self, slug: str) -> StepDefinition:
        """Return the step with this slug.

        Raises:
            DefinitionError: this flow has no such step.
        """
        try:
            return self._steps[slug]
        except KeyError:
            known = ", ".join(self._steps) or "none"
            raise Where(self._slug, slug).error(
                f"flow {self._slug!r} has no such step (steps: {known})",
                hint="the deployed flow and this code differ: deploy the code's flow",
            ) from None

    def slug_of(self, handler: Callable[..., Any], where: Where | None = None) -> str:
        """Return the slug of the step whose handler is ``handler``.

        Raises:
            DefinitionError: no step (or more than one) of this flow has that handler.
        """
        slugs = [s.slug for s in self._steps.values() if s.handler is handler]
        if len(slugs) == 1:
            return slugs[0]
        name = getattr(handler, "__name__", repr(handler))
        problem = "is not a step of" if not slugs else "is the handler of several steps in"
        raise (where or Where(self._slug)).error(
            f"handler {name!r} {problem} flow {self._slug!r}",
            hint="refer to the step by its slug instead, e.g. depends_on=['slug']",
        )

    def dump_input(self, value: Any) -> Any:
        """Validate a run input against the input type and return it as JSON-compatible data.

        Raises:
            InvalidInputError: the value does not match the flow's input type.
        """
        adapter = self._input_adapter or TypeAdapter(Any)
        try:
            return adapter.dump_python(adapter.validate_python(value), mode="json")
        except (ValidationError, PydanticSerializationError, ValueError) as exc:
            # ValueError: a circular or too deeply nested value, bytes that are not UTF-8
            raise InvalidInputError(
                f"invalid input for flow {self._slug!r}: {exc}",
                hint="pass a value matching the flow's input model",
                flow_slug=self._slug,
            ) from exc

    @overload
    def step(self, slug: F, /) -> F: ...
    @overload
    def step(
        self, slug: str | None = None, handler: None = None, **options: Unpack[StepOptions]
    ) -> Callable[[F], F]: ...
    @overload
    def step(
        self, slug: str | None, handler: Callable[..., Any], **options: Unpack[StepOptions]
    ) -> Flow: ...
    def step(
        self, slug: Any = None, handler: Any = None, **options: Any
    ) -> Flow | Callable[[F], F] | Any:
        """Add a single step: ``@flow.step(...)`` or ``flow.step("slug", handler, ...)``.

        Args:
            slug: the step's slug; defaults to the handler's ``__name__``.
            handler: the function (fluent form); omit it to get a decorator.
            **options: ``depends_on`` (slugs or decorated handlers), ``max_attempts``,
                ``base_delay``, ``timeout``, ``start_delay``, ``if_``, ``if_not``,
                ``when_unmet``, ``when_exhausted``, ``concurrency`` (an int or
                ``pgflow.Limit``) and ``rate_limit`` (``"100/min"`` or ``pgflow.RateLimit``).

        Returns:
            The decorator (which returns the handler unchanged), or this flow (fluent form).
        """
        return self._add("step", slug, handler, options)

    @overload
    def map(self, slug: F, /) -> F: ...
    @overload
    def map(
        self, slug: str | None = None, handler: None = None, **options: Unpack[MapOptions]
    ) -> Callable[[F], F]: ...
    @overload
    def map(
        self, slug: str | None, handler: Callable[..., Any], **options: Unpack[MapOptions]
    ) -> Flow: ...
    def map(
        self, slug: Any = None, handler: Any = None, **options: Any
    ) -> Flow | Callable[[F], F] | Any:
        """Add a map step: one task per element of ``array``'s output (or the flow input).

        Takes the options of :meth:`step` plus ``array`` (a slug or decorated handler). The
        handler's first non-Context parameter receives one element; the step's output is
        the list of results in element order.
        """
        return self._add("map", slug, handler, options)

    @overload
    def array(self, slug: F, /) -> F: ...
    @overload
    def array(
        self, slug: str | None = None, handler: None = None, **options: Unpack[StepOptions]
    ) -> Callable[[F], F]: ...
    @overload
    def array(
        self, slug: str | None, handler: Callable[..., Any], **options: Unpack[StepOptions]
    ) -> Flow: ...
    def array(
        self, slug: Any = None, handler: Any = None, **options: Any
    ) -> Flow | Callable[[F], F] | Any:
        """Add a single step whose output must be a list (options as in :meth:`step`)."""
        return self._add("array", slug, handler, options)

    def _add(self, kind: StepKind, slug: Any, handler: Any, options: dict[str, Any]) -> Any:
        if callable(slug) and handler is None:
            self._register(_spec(kind, None, slug, options, self._slug))
            return slug
        if handler is not None:
            self._register(_spec(kind, slug, handler, options, self._slug))
            return self

        def decorator(function: F) -> F:
            self._register(_spec(kind, slug, function, options, self._slug))
            return function

        return decorator

    def _register(self, spec: StepSpec) -> None:
        step = define_step(spec, self)
        self._steps[step.slug] = step


def _spec(kind: StepKind, slug: Any, handler: Any, options: dict[str, Any], flow: str) -> StepSpec:
    allowed = set(MapOptions.__optional_keys__ if kind == "map" else StepOptions.__optional_keys__)
    unknown = sorted(set(options) - allowed)
    if unknown:
        raise DefinitionError(
            f"flow {flow!r}: unknown option {', '.join(map(repr, unknown))} for a {kind} step",
            hint=f"use only {', '.join(sorted(allowed))}",
            flow_slug=flow,
        )
    if slug is not None and not isinstance(slug, str):
        check_slug(slug, kind="step", flow_slug=flow)
    return StepSpec(
        kind=kind,
        slug=slug,
        handler=handler,
        depends_on=options.get("depends_on", ()),
        array=options.get("array", UNSET),
        options={name: options.get(name, UNSET) for name in _OPTION_NAMES},
        if_=options.get("if_", UNSET),
        if_not=options.get("if_not", UNSET),
        when_unmet=options.get("when_unmet", UNSET),
        when_exhausted=options.get("when_exhausted", UNSET),
        concurrency=options.get("concurrency"),
        rate_limit=options.get("rate_limit"),
    )
