"""Write compiled flows as migration files, guarded by the files already there.

``pgflow compile FLOWS -o DIR`` writes ``<UTC YYYYmmddHHMMSS>_create_<slug>.sql`` per flow.
Before writing anything it reads DIR's earlier ``*.sql`` files: a flow they already define
with the same shape is skipped (and said so); one they define with a different shape stops
the whole command, naming the file, because flows are immutable.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from pgflow.compiler import CompiledFlow
from pgflow.compiler.read import DefinedFlow, read_defined_flows
from pgflow.errors import CompileError
from pgflow.shape import diff


@dataclass(frozen=True, slots=True)
class MigrationOutcome:
    """What happened to one flow.

    Attributes:
        flow_slug: the flow.
        path: the file written, or the earlier file that already defines the same shape.
        written: True when ``path`` was written now; False when it was skipped.
    """

    flow_slug: str
    path: Path
    written: bool


def migration_name(flow_slug: str, now: datetime) -> str:
    """Return ``<UTC YYYYmmddHHMMSS>_create_<slug>.sql`` for ``now``."""
    return f"{now.astimezone(UTC):%Y%m%d%H%M%S}_create_{flow_slug}.sql"


def write_migrations(
    compiled: Sequence[CompiledFlow], directory: Path, *, now: datetime | None = None
) -> list[MigrationOutcome]:
    """Write one migration file per flow into ``directory`` unless it is already there.

    Args:
        compiled: the compiled flows.
        directory: the migrations folder (created if missing).
        now: the timestamp for file names (default: the current UTC time).

    Returns:
        One outcome per flow, in order.

    Raises:
        CompileError: an earlier file defines one of the slugs with a different shape
            (nothing is written then), or an earlier file cannot be read.
    """
    directory.mkdir(parents=True, exist_ok=True)
    defined = read_defined_flows(directory)
    for flow in compiled:
        earlier = defined.get(flow.flow_slug)
        if earlier is not None and earlier.checksum != flow.checksum:
            raise _changed_shape(flow, earlier)
    stamp = now or datetime.now(UTC)
    return [_write(flow, directory, stamp, defined.get(flow.flow_slug)) for flow in compiled]


def _write(
    flow: CompiledFlow, directory: Path, now: datetime, earlier: DefinedFlow | None
) -> MigrationOutcome:
    if earlier is not None:
        return MigrationOutcome(flow.flow_slug, Path(earlier.path), written=False)
    path = directory / migration_name(flow.flow_slug, now)
    with path.open("x", encoding="utf-8", newline="\n") as file:
        file.write(flow.sql)
    return MigrationOutcome(flow.flow_slug, path, written=True)


def _changed_shape(flow: CompiledFlow, earlier: DefinedFlow) -> CompileError:
    difference = diff(earlier.shape, flow.shape, names=("earlier migration", "new definition"))
    return CompileError(
        f"flow {flow.flow_slug!r} is already defined in {earlier.path} (line {earlier.line}) "
        f"with a different shape (checksum {earlier.checksum} there, {flow.checksum} now): "
        f"{difference}",
        hint=f"flows are immutable: give the changed flow a new slug, e.g. "
        f"Flow({flow.flow_slug + '_v2'!r}, ...), and keep the old one until its runs finish",
        flow_slug=flow.flow_slug,
        path=earlier.path,
        checksum_expected=earlier.checksum,
        checksum_actual=flow.checksum,
    )
