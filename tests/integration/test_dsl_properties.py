"""Property: any definition either compiles to SQL that applies cleanly, or is refused
with a pgflow error. Never a crash, never SQL that Postgres rejects.

Hypothesis builds flows from arbitrary parts: slugs valid and invalid (reserved words,
too long, empty, crafted to inject SQL), dependencies on earlier, later and unknown
steps, map steps with several dependencies, options of every type and range, unknown
option names, condition patterns of any Python value (nested, huge, non-JSON, NUL and
quote characters), modes that exist and that do not, and handlers whose parameters bind
or do not bind. Whatever the DSL accepts is compiled and applied to a real database,
where it must define exactly the shape and checksum Python computed.
"""

from __future__ import annotations

import enum
import itertools
from decimal import Decimal
from typing import Any

import psycopg
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pgflow import Flow, PgflowError
from pgflow.compiler import compile_flow
from pgflow.shape import shape_of

PROPERTY_SETTINGS = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
INJECTIONS = [
    "x'); drop table pgflow.runs; --",
    "$$; drop table pgflow.runs; $$",
    "a\\'b",
    '"quoted"',
    "run",
    "input",
    "",
    "9lives",
    "x" * 129,
    "ünïcode",
]
numbers = itertools.count()

texts = st.text(max_size=8) | st.sampled_from(INJECTIONS)
valid_slugs = st.from_regex(r"[a-z_][a-z0-9_]{0,10}", fullmatch=True).filter(
    lambda s: s not in ("run", "input")
)


class HugeInt(int):
    """An int too long for str() (over 4300 digits) whose repr hypothesis can still print."""

    def __repr__(self) -> str:
        return "10**5000"


def deep(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {"leaf": True}
    for _ in range(depth):
        value = {"a": value}
    return value


odd_values = st.sampled_from(
    [object(), {1, 2}, b"\xff", Decimal("1.5"), HugeInt(10**5000), float("nan"), float("inf")]
)


class NumpyLikeFloat(float):
    """A float subclass that prints itself its own way, as ``numpy.float64`` does."""

    def __repr__(self) -> str:
        return f"np.float64({float(self)!r})"


class Level(enum.IntEnum):
    LOW = 1
    HIGH = 2


finite = st.floats(allow_nan=False, allow_infinity=False)
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | finite
    | texts
    | st.builds(NumpyLikeFloat, finite)
    | st.sampled_from(list(Level)),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(texts, inner, max_size=3),
    max_leaves=10,
)
anything = st.recursive(
    json_values | odd_values,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(texts | st.integers(), inner, max_size=3)
    ),
    max_leaves=10,
)


def mostly(good: st.SearchStrategy[Any], bad: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """``good`` nineteen times in twenty, ``bad`` otherwise, so many definitions get through
    (a flow is refused as soon as one of its many parts is)."""
    return st.integers(0, 19).flatmap(lambda n: bad if n == 13 else good)  # not a bound:
    # hypothesis draws the bounds 0 and 19 far more often than one in twenty


slug_like = mostly(valid_slugs, texts)
option_values = mostly(st.integers(1, 100), st.integers() | anything)
modes = mostly(st.sampled_from(["skip", "skip-cascade", "fail"]), anything)
hostile_patterns = st.one_of(
    anything,
    st.builds(deep, st.integers(90, 300)),
    st.just({"n": HugeInt(10**5000)}),
)
# one pattern in four is hostile: a step fails on its first bad part, so patterns need more
patterns = st.integers(0, 3).flatmap(
    lambda n: hostile_patterns if n == 2 else st.dictionaries(texts, json_values, max_size=3)
)


def any_input(input: Any = None, **deps: Any) -> Any:
    return input


def map_item(item: Any, **deps: Any) -> Any:
    return item


def binds_nothing(unrelated: int) -> int:
    return unrelated


@st.composite
def step_options(draw: st.DrawFn) -> dict[str, Any]:
    names = ["max_attempts", "base_delay", "timeout", "start_delay"]
    names += ["if_", "if_not", "when_unmet", "when_exhausted", "unknown_option"]
    chosen = draw(st.lists(st.sampled_from(names), unique=True, max_size=4))
    options: dict[str, Any] = {}
    for name in chosen:
        if name in ("if_", "if_not"):
            options[name] = draw(patterns)
        elif name.startswith("when_"):
            options[name] = draw(modes)
        elif name != "unknown_option" or draw(st.integers(0, 3)) == 0:
            options[name] = draw(option_values)
    return options


@st.composite
def definitions(draw: st.DrawFn) -> Flow:
    """Build a flow from arbitrary parts; the DSL may refuse it at any point."""
    flow_options = {
        name: draw(option_values)
        for name in draw(st.lists(st.sampled_from(["max_attempts", "base_delay", "timeout"])))
    }
    flow = Flow(f"{draw(slug_like)}{next(numbers)}", **flow_options)
    defined: list[str] = []
    for _ in range(draw(st.integers(1, 6))):
        kind = draw(mostly(st.sampled_from(["step", "map"]), st.just("array")))
        slug = draw(slug_like)
        if defined:
            deps = draw(st.lists(mostly(st.sampled_from(defined), slug_like), max_size=2))
        else:
            deps = draw(mostly(st.just([]), st.lists(slug_like, min_size=1, max_size=1)))
        deps = deps if draw(st.integers(0, 3)) == 0 else deps[:1] if kind == "map" else deps
        options = draw(step_options())
        usual = map_item if kind == "map" else any_input
        handler = draw(mostly(st.just(usual), st.sampled_from([any_input, binds_nothing])))
        if kind == "map":
            flow.map(slug, handler, array=deps[0] if deps else None, **options)
        else:
            getattr(flow, kind)(slug, handler, depends_on=deps, **options)
        defined.append(slug)
    return flow


def attempt(build: st.DrawFn) -> Flow | None:
    """Draw a definition; None when the DSL refused it with a pgflow error."""
    try:
        return build(definitions())
    except PgflowError:
        return None


@PROPERTY_SETTINGS
@given(data=st.data())
def test_a_definition_compiles_and_applies_or_is_refused_with_a_pgflow_error(
    conn: psycopg.Connection[Any], data: st.DataObject
) -> None:
    flow = attempt(data.draw)
    if flow is None:
        return
    try:
        compiled = compile_flow(flow)
    except PgflowError:
        return
    conn.execute(compiled.sql)  # must apply cleanly: no Postgres error
    try:
        row = conn.execute(
            "select pgflow.flow_checksum(%(s)s) as checksum, "
            "pgflow.get_flow_shape(%(s)s)::text as shape, "
            "(select status from pgflow.flows where flow_slug = %(s)s) as status",
            {"s": flow.slug},
        ).fetchone()
    finally:
        conn.execute("select pgflow.delete_flow_and_data(%s)", [flow.slug])
    assert row is not None
    assert row["status"] == "ready"  # type: ignore[call-overload]
    assert row["shape"] == shape_of(flow).canonical  # type: ignore[call-overload]
    assert row["checksum"] == compiled.checksum  # type: ignore[call-overload]
