"""Flow manifests: what ``pgflow flows``, ``pgflow inspect`` and ``pgflow diff`` show.

See ``docs/deploying.md`` (inspect, diff) and ``docs/runs.md`` (flows).
"""

from __future__ import annotations

from pgflow.manifest.build import from_database, from_flow, from_migrations, list_deployed
from pgflow.manifest.compare import Difference, differences
from pgflow.manifest.models import DeployedFlow, FlowManifest, Parameter, StepManifest
from pgflow.manifest.render import render_diff, render_manifest, render_missing

__all__ = [
    "DeployedFlow",
    "Difference",
    "FlowManifest",
    "Parameter",
    "StepManifest",
    "differences",
    "from_database",
    "from_flow",
    "from_migrations",
    "list_deployed",
    "render_diff",
    "render_manifest",
    "render_missing",
]
