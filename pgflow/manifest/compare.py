"""Every difference between two manifests of one flow, each as a sentence.

``before`` is what runs (the deployed flow, or what the migrations define) and ``after``
is the code. Shape differences (steps added, removed or reordered; a step's type,
dependencies, conditions and modes) decide whether the flow can be deployed under its slug;
option differences (tunables) and the input type are updated in place by a deploy.
Sentences name slugs in backticks, so they read well pasted into a pull request.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from pgflow.manifest.models import FLOW_OPTIONS, STEP_OPTIONS, FlowManifest, StepManifest
from pgflow.shape import StepShape, canonical_json

__all__ = ["Difference", "differences", "side_name"]

Kind = Literal["shape", "option", "input"]
_FIELDS = (
    ("step_type", "step type"),
    ("deps", "depends on"),
    ("required_input_pattern", "if_"),
    ("forbidden_input_pattern", "if_not"),
    ("when_unmet", "when_unmet"),
    ("when_exhausted", "when_exhausted"),
)


@dataclass(frozen=True, slots=True)
class Difference:
    """One difference: ``shape``, ``option`` or ``input`` (the run input's type)."""

    kind: Kind
    text: str


def side_name(manifest: FlowManifest) -> str:
    """How a sentence calls one side: ``code``, ``deployed`` or ``migrations``."""
    return {"code": "code", "database": "deployed", "migrations": "migrations"}[manifest.source]


def differences(before: FlowManifest, after: FlowManifest) -> list[Difference]:
    """Every difference from ``before`` to ``after`` (shape first, then input and options)."""
    names = (side_name(before), side_name(after))
    found = [Difference("shape", text) for text in _shape(before, after, names)]
    if before.input_type and after.input_type and before.input_type != after.input_type:
        found.append(
            Difference("input", _change("input type", before.input_type, after.input_type, names))
        )
    found += [Difference("option", text) for text in _options(before, after, names)]
    return found


def _change(what: str, old: str, new: str, names: tuple[str, str]) -> str:
    return f"{what}: {old} ({names[0]}) → {new} ({names[1]})"


def _shape(before: FlowManifest, after: FlowManifest, names: tuple[str, str]) -> list[str]:
    if before.shape.canonical == after.shape.canonical:
        return []
    old = {s.step_slug: s for s in before.shape.steps}
    new = {s.step_slug: s for s in after.shape.steps}
    lines = [
        f"step `{slug}` is removed (it is in the {names[0]} flow, not in the {names[1]})"
        for slug in old
        if slug not in new
    ]
    lines += [
        _added(index, step)
        for index, step in enumerate(after.shape.steps)
        if step.step_slug not in old
    ]
    common_old = [slug for slug in old if slug in new]
    common_new = [slug for slug in new if slug in old]
    if common_old != common_new:
        lines.append(_change("step order", ", ".join(common_old), ", ".join(common_new), names))
    for slug in common_new:
        lines += _step_changes(old[slug], new[slug], names)
    return lines


def _added(index: int, step: StepShape) -> str:
    after = f"depends on {_deps(step.deps)}" if step.deps else "a root step"
    return f"step `{step.step_slug}` is new (position {index + 1}, {step.step_type}, {after})"


def _deps(deps: tuple[str, ...]) -> str:
    return ", ".join(f"`{d}`" for d in sorted(deps)) or "nothing"


def _step_changes(old: StepShape, new: StepShape, names: tuple[str, str]) -> list[str]:
    lines = []
    for field, label in _FIELDS:
        before, after = _value(field, getattr(old, field)), _value(field, getattr(new, field))
        if before != after:
            lines.append(_change(f"step `{new.step_slug}`: {label}", before, after, names))
    return lines


def _value(field: str, value: Any) -> str:
    if field == "deps":
        return _deps(value)
    if field.endswith("_pattern"):
        return "none" if value is None else canonical_json(value)
    return str(value)


def _options(before: FlowManifest, after: FlowManifest, names: tuple[str, str]) -> list[str]:
    lines = [
        _change(f"flow option `{name}`", str(before.options[name]), str(after.options[name]), names)
        for name in FLOW_OPTIONS
        if before.options.get(name) != after.options.get(name)
    ]
    if before.retention != after.retention:
        kept = (before.retention or "not set", after.retention or "not set")
        lines.append(_change("flow option `retention`", *kept, names))
    if before.priority != after.priority:
        lines.append(
            _change("flow option `priority`", str(before.priority), str(after.priority), names)
        )
    if before.limits is not None and after.limits is not None:
        lines += _limits(before.limits, after.limits, names)
    old_steps = {s.step_slug: s for s in before.steps}
    for step in after.steps:
        old = old_steps.get(step.step_slug)
        if old is not None:
            lines += _step_options(old, step, names)
    return lines


def _limits(old: dict[str, str], new: dict[str, str], names: tuple[str, str]) -> list[str]:
    return [
        _change(f"`{name}`", old.get(name, "none"), new.get(name, "none"), names)
        for name in sorted({*old, *new})
        if old.get(name) != new.get(name)
    ]


def _step_options(old: StepManifest, new: StepManifest, names: tuple[str, str]) -> list[str]:
    return [
        _change(
            f"step `{new.step_slug}` option `{name}`",
            _option(old.options.get(name)),
            _option(new.options.get(name)),
            names,
        )
        for name in STEP_OPTIONS
        if old.options.get(name) != new.options.get(name)
    ]


def _option(value: int | None) -> str:
    return "not set" if value is None else str(value)
