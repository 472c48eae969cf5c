"""The ordered, immutable SQL migrations that install and upgrade the pgflow schema.

Files are named ``NNNN_name.sql`` (``0001_initial.sql``, ``0002_add_x.sql``, ...), ids start
at 1 and have no gaps. Each migration is pinned by the SHA-256 of its text in the
``CHECKSUMS`` manifest (``sha256sum`` format, so ``sha256sum -c CHECKSUMS`` works too).
Once a version is released its migrations never change: a changed file would no longer
match what existing databases recorded, and the installer refuses to run against them.
Before the first release ``0001_initial.sql`` is regenerated from ``pgflow/sql/schema/``
by ``scripts/build-migrations``.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from functools import cache
from importlib.resources import files

from pgflow.errors import SchemaError

__all__ = [
    "MANIFEST_NAME",
    "Migration",
    "checksum",
    "migrations",
    "parse_manifest",
    "read_manifest",
    "render_manifest",
]

MANIFEST_NAME = "CHECKSUMS"
_FILE_NAME = re.compile(r"^(?P<id>\d{4})_(?P<name>[a-z0-9_]+)\.sql$")
_MANIFEST_LINE = re.compile(r"^(?P<checksum>[0-9a-f]{64}) [ *](?P<file>\S+)$")


@dataclass(frozen=True, slots=True)
class Migration:
    """One migration file.

    Attributes:
        id: the number in the file name (``1`` for ``0001_initial.sql``).
        name: the rest of the file name without the extension (``"initial"``).
        sql: the file's text, executed as one multi-statement batch in one transaction.
        checksum: lower-case hex SHA-256 of the text (see :func:`checksum`).
    """

    id: int
    name: str
    sql: str
    checksum: str

    @property
    def filename(self) -> str:
        """The file name, e.g. ``0001_initial.sql``."""
        return f"{self.id:04d}_{self.name}.sql"


def checksum(sql: str) -> str:
    """Return the SHA-256 of a migration text.

    Line endings are normalised to ``\\n`` first, so a Windows checkout (``core.autocrlf``)
    computes the same checksum as the released file.
    """
    return hashlib.sha256(sql.replace("\r\n", "\n").encode("utf-8")).hexdigest()


@cache
def migrations() -> tuple[Migration, ...]:
    """Return the packaged migrations in id order (read once, then cached).

    Raises:
        SchemaError: a file name breaks the ``NNNN_name.sql`` pattern, or the ids are not
            ``1..N`` without gaps or duplicates (a packaging bug; the message names the file).
    """
    folder = files("pgflow.migrations")
    found: list[Migration] = []
    for entry in folder.iterdir():
        if not entry.name.endswith(".sql"):
            continue
        match = _FILE_NAME.match(entry.name)
        if match is None:
            raise SchemaError(
                f"pgflow/migrations/{entry.name}: not a valid migration file name",
                hint="Name migrations NNNN_lower_case_name.sql, e.g. 0002_add_index.sql.",
            )
        text = entry.read_text(encoding="utf-8")
        found.append(Migration(int(match["id"]), match["name"], text, checksum(text)))
    found.sort(key=lambda m: m.id)
    _check_sequence(found)
    return tuple(found)


def _check_sequence(found: list[Migration]) -> None:
    for expected, migration in enumerate(found, start=1):
        if migration.id != expected:
            raise SchemaError(
                f"pgflow/migrations/{migration.filename}: expected migration {expected:04d} here",
                hint="Migration ids start at 0001 and have no gaps or duplicates.",
            )


def render_manifest(items: tuple[Migration, ...] | list[Migration]) -> str:
    """Return the ``CHECKSUMS`` text for these migrations (``sha256sum`` format)."""
    return "".join(f"{m.checksum}  {m.filename}\n" for m in items)


def parse_manifest(text: str) -> dict[str, str]:
    """Parse ``CHECKSUMS`` text into ``{file name: checksum}``.

    Raises:
        SchemaError: a line is not ``<64 hex digits>  <file name>``.
    """
    result: dict[str, str] = {}
    for line_no, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        match = _MANIFEST_LINE.match(line)
        if match is None:
            raise SchemaError(
                f"pgflow/migrations/{MANIFEST_NAME} line {line_no}: malformed line {line!r}",
                hint="Regenerate it with scripts/build-migrations.",
            )
        result[match["file"]] = match["checksum"]
    return result


def read_manifest() -> dict[str, str]:
    """Return the packaged ``CHECKSUMS`` manifest as ``{file name: checksum}``."""
    entry = files("pgflow.migrations") / MANIFEST_NAME
    return parse_manifest(entry.read_text(encoding="utf-8"))
