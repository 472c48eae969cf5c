"""Build manifests from code, from the database and from migration files.

* :func:`from_flow`: everything, types included (JSON Schema titles of the annotations).
* :func:`from_database`: what the definition tables hold; the input type when deploy
  stored the flow's input JSON Schema, no other types.
* :func:`from_migrations`: the flows a folder of compiled SQL defines once every file is
  applied in name order (shapes, and options as the last call set them); no types.
* :func:`list_deployed`: every deployed flow with its run counts by status (``pgflow flows``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg
from psycopg.rows import dict_row

from pgflow.compiler.read import read_defined_flows
from pgflow.db.errors import wrap_db_errors
from pgflow.dsl._unset import Unset
from pgflow.dsl.binding import EMPTY, ParameterBinding
from pgflow.dsl.compat import schema_of
from pgflow.dsl.flow import Flow
from pgflow.dsl.step import StepDefinition
from pgflow.errors import UnknownFlowError
from pgflow.manifest.models import (
    FLOW_OPTIONS,
    STEP_OPTIONS,
    DeployedFlow,
    FlowManifest,
    Parameter,
    Receives,
    StepManifest,
)
from pgflow.manifest.types import schema_title, type_title
from pgflow.models import RUN_STATUSES
from pgflow.shape import FlowShape, StepShape, canonical_json, shape_of
from pgflow.sql import query

__all__ = ["from_database", "from_flow", "from_migrations", "list_deployed", "short_duration"]

_UNIT_SECONDS = {"w": 604800, "d": 86400, "h": 3600, "m": 60, "s": 1}
_INTERVAL = re.compile(r"(?P<n>\d+) (?P<unit>weeks?|days?|hours?|minutes?|seconds?)")
_RECEIVES: dict[str, Receives] = {
    "input": "input",
    "dependency": "dependency",
    "element": "element",
    "extra": "dependencies",  # **kwargs: the outputs no other parameter names
}


def from_flow(flow: Flow, location: str) -> FlowManifest:
    """The manifest of a flow defined in code (``location``: its FLOWS reference)."""
    shape = shape_of(flow)
    return FlowManifest(
        flow_slug=flow.slug,
        source="code",
        location=location,
        checksum=shape.checksum,
        input_type=type_title(flow.input_schema) or "any",
        options={
            "max_attempts": flow.max_attempts,
            "base_delay": flow.base_delay,
            "timeout": flow.timeout,
        },
        retention=short_duration(flow.retention),
        priority=flow.priority,
        limits={limit.label: limit.value_text for limit in flow.limits},
        steps=tuple(_code_step(step, s) for step, s in zip(flow.steps, shape.steps, strict=True)),
        shape=shape,
    )


def _code_step(step: StepDefinition, shape: StepShape) -> StepManifest:
    given = {name: getattr(step.options, name) for name in STEP_OPTIONS}
    options = {name: None if isinstance(v, Unset) else v for name, v in given.items()}
    return _step(
        shape,
        options,
        returns_array=step.returns_array,
        parameters=tuple(_parameter(b) for b in step.parameters if b.source != "context"),
        output_type=type_title(step.output_schema) or "any",
    )


def _parameter(binding: ParameterBinding) -> Parameter:
    annotation = binding.annotation
    schema = None if annotation is EMPTY else schema_of(annotation, "validation")
    return Parameter(
        name=binding.name,
        receives=_RECEIVES[binding.source],
        type=type_title(schema) or "any",
    )


def _step(shape: StepShape, options: Mapping[str, int | None], **known: Any) -> StepManifest:
    if options.get("start_delay") == 0:  # 0 and "not set" both mean no delay
        options = {**options, "start_delay": None}
    return StepManifest(
        step_slug=shape.step_slug,
        step_type=shape.step_type,
        depends_on=tuple(sorted(shape.deps)),
        options={name: options.get(name) for name in STEP_OPTIONS},
        required_input_pattern=_plain(shape.required_input_pattern),
        forbidden_input_pattern=_plain(shape.forbidden_input_pattern),
        when_unmet=shape.when_unmet,
        when_exhausted=shape.when_exhausted,
        **known,
    )


def _plain(pattern: Any) -> Any:
    """A pattern as plain JSON values (exact decimals from the database become numbers)."""
    return None if pattern is None else json.loads(canonical_json(pattern))


def from_database(conn: psycopg.Connection[Any], slug: str, location: str) -> FlowManifest:
    """The manifest of the deployed flow ``slug`` (``location``: the database, for people).

    Raises:
        UnknownFlowError: no flow with that slug is deployed.
    """
    with wrap_db_errors(), conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(query("manifest_deployed_flow"), {"slug": slug}).fetchone()
        limits = cur.execute(query("deploy_limits"), {"slug": slug}).fetchall()
    if row is None:
        raise UnknownFlowError(
            f"no flow {slug!r} is deployed in {location}",
            hint="`pgflow flows` lists what is deployed; to read flows from code, pass a file "
            "(flows.py) or a module with its attribute (app.flows:flow)",
            flow_slug=slug,
        )
    shape = FlowShape.from_json(row["shape"])
    step_options: dict[str, dict[str, int | None]] = row["step_options"]
    return FlowManifest(
        flow_slug=slug,
        source="database",
        location=location,
        checksum=row["checksum"],
        status=row["status"],
        created_at=row["created_at"],
        input_type=schema_title(row["input_schema"]),
        options={name: row["options"][name] for name in FLOW_OPTIONS},
        retention=short_duration(row["retention_seconds"]),
        priority=row["priority"],
        limits={limit["name"]: limit["value"] for limit in limits},
        steps=tuple(_step(s, step_options.get(s.step_slug, {})) for s in shape.steps),
        shape=shape,
    )


def from_migrations(directory: Path) -> dict[str, FlowManifest]:
    """The manifests of the flows the ``*.sql`` files of ``directory`` define, by slug.

    Raises:
        CompileError: a file cannot be read, or a pgflow call in it cannot be understood.
    """
    manifests: dict[str, FlowManifest] = {}
    for slug, defined in read_defined_flows(directory).items():
        manifests[slug] = FlowManifest(
            flow_slug=slug,
            source="migrations",
            location=defined.last_path or defined.path,
            checksum=defined.checksum,
            input_type=schema_title(defined.input_schema),
            options=defined.options,
            retention=short_duration(defined.retention),
            priority=defined.priority,
            steps=tuple(
                _step(s, defined.step_options.get(s.step_slug, {})) for s in defined.shape.steps
            ),
            shape=defined.shape,
        )
    return manifests


def short_duration(value: timedelta | int | str | None) -> str | None:
    """A retention as ``30d``, ``12h``, ``90m`` or ``45s`` (the largest exact unit).

    Accepts a timedelta, seconds, or interval text such as ``"30 days"``; other text is
    returned unchanged, None stays None.
    """
    if value is None:
        return None
    if isinstance(value, str):
        match = _INTERVAL.fullmatch(value.strip())
        if match is None:
            return value
        value = int(match["n"]) * _UNIT_SECONDS[match["unit"][0]]
    seconds = int(value.total_seconds()) if isinstance(value, timedelta) else int(value)
    for unit in ("w", "d", "h", "m"):
        if seconds and seconds % _UNIT_SECONDS[unit] == 0:
            return f"{seconds // _UNIT_SECONDS[unit]}{unit}"
    return f"{seconds}s"


def list_deployed(conn: psycopg.Connection[Any]) -> list[DeployedFlow]:
    """Every deployed flow, by slug, with its number of runs in each status.

    Counting reads every row of ``pgflow.runs`` once (a sequential scan): O(runs).
    """
    with wrap_db_errors(), conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(query("flows_list")).fetchall()
    return [
        DeployedFlow.model_validate(
            {**row, "runs": {s: int(row["runs"].get(s, 0)) for s in RUN_STATUSES}}
        )
        for row in rows
    ]
