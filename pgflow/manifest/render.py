"""Plain-text forms of manifests (``pgflow inspect``) and differences (``pgflow diff``).

Plain text, no colours or tables: it pastes into a pull request, a ticket or a chat as is.
"""

from __future__ import annotations

from collections.abc import Mapping

from pgflow.manifest.compare import Difference, side_name
from pgflow.manifest.models import FlowManifest, Parameter, StepManifest
from pgflow.shape import canonical_json

__all__ = ["render_diff", "render_manifest", "render_missing"]

_UNKNOWN = "?"


def render_manifest(manifest: FlowManifest) -> str:
    """The manifest as text: the flow, then each step in definition order."""
    lines = [f"flow {manifest.flow_slug} ({side_name(manifest)}: {manifest.location})"]
    facts = {
        "checksum": manifest.checksum,
        "status": manifest.status,
        "deployed": manifest.created_at and f"{manifest.created_at:%Y-%m-%d %H:%M:%S %Z}",
        "input": manifest.input_type or _UNKNOWN,
        "options": _options(manifest.options),
        "retention": manifest.retention,
        "priority": str(manifest.priority) if manifest.priority else None,
        "limits": "; ".join(f"{name} {value}" for name, value in (manifest.limits or {}).items()),
        "steps": str(len(manifest.steps)),
    }
    lines += [f"  {name:<9} {value}" for name, value in facts.items() if value]
    for position, step in enumerate(manifest.steps, start=1):
        lines.append("")
        lines += _step(position, step)
    if manifest.source != "code":
        lines += ["", "(step input and output types are known from code: `pgflow inspect FLOWS`)"]
    return "\n".join(lines) + "\n"


def _step(position: int, step: StepManifest) -> list[str]:
    kind = step.step_type + (" (array)" if step.returns_array else "")
    lines = [f"{position}. {step.step_slug} ({kind}) -> {step.output_type or _UNKNOWN}"]
    details = {
        "after": ", ".join(step.depends_on),
        "receives": _parameters(step.parameters),
        "options": _options(step.options),
        "if_": _pattern(step.required_input_pattern),
        "if_not": _pattern(step.forbidden_input_pattern),
        "when_unmet": step.when_unmet if _has_condition(step) else "",
        "when_exhausted": step.when_exhausted if step.when_exhausted != "fail" else "",
    }
    return lines + [f"   {name:<14} {value}" for name, value in details.items() if value]


def _has_condition(step: StepManifest) -> bool:
    return step.required_input_pattern is not None or step.forbidden_input_pattern is not None


def _parameters(parameters: tuple[Parameter, ...] | None) -> str:
    if parameters is None:
        return ""
    shown = [f"{p.name}: {p.type}" + _origin(p) for p in parameters]
    return ", ".join(shown) or "nothing"


def _origin(parameter: Parameter) -> str:
    if parameter.receives == "element":
        return " (each element)"
    if parameter.receives == "dependencies":
        return " (other dependencies)"
    return ""


def _options(options: Mapping[str, int | None]) -> str:
    return ", ".join(f"{name}={value}" for name, value in options.items() if value is not None)


def _pattern(pattern: object) -> str:
    return "" if pattern is None else canonical_json(pattern)


def render_diff(before: FlowManifest, after: FlowManifest, found: list[Difference]) -> str:
    """The differences from ``before`` (what runs) to ``after`` (the code), as text."""
    head = f"flow `{after.flow_slug}`: {side_name(after)} ({after.location}) vs {_side(before)}"
    if not found:
        return f"{head}: no differences (checksum {after.checksum[:12]})\n"
    lines = [f"{head}: {len(found)} difference{'s' if len(found) > 1 else ''}"]
    shape = [d.text for d in found if d.kind == "shape"]
    if shape:
        lines.append(
            f"Shape changed (checksum {before.checksum[:12]} {side_name(before)}, "
            f"{after.checksum[:12]} {side_name(after)}): flows are immutable, so ship it under "
            f"a new slug such as `{after.flow_slug}_v2`, or recreate it in development with "
            "`pgflow deploy --dev` (this deletes its runs)."
        )
        lines += [f"- {text}" for text in shape]
    tunables = [d.text for d in found if d.kind != "shape"]
    if tunables:
        lines.append("Options and input type (a deploy updates them in place):")
        lines += [f"- {text}" for text in tunables]
    return "\n".join(lines) + "\n"


def _side(manifest: FlowManifest) -> str:
    name = side_name(manifest)
    return f"{name} ({manifest.location})"


def render_missing(after: FlowManifest, against: str) -> str:
    """The line for a flow of the code that is not deployed / not in the migrations."""
    if against == "deployed":
        what, fix = "is not deployed", "`pgflow deploy` creates it"
    else:
        what, fix = (
            f"is not defined by the migrations in {against}",
            (f"`pgflow compile FLOWS -o {against}` writes it"),
        )
    return f"flow `{after.flow_slug}`: {what} ({fix})\n"
