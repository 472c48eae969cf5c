"""A temporary Alembic project per test, against a real database.

``alembic_project`` builds what docs/alembic.md describes: ``alembic.ini`` listing the
user's versions folder and ``pgflow.contrib.alembic:versions`` (``path_separator =
newline``), and an ``env.py`` with the pgflow autogenerate plugin enabled. Alembic runs
in-process through :mod:`alembic.command` (the env.py skips logging configuration, which
would disable the test session's loggers).
"""

from __future__ import annotations

import io
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from alembic import command
from alembic.config import Config
from psycopg.conninfo import conninfo_to_dict
from sqlalchemy.engine import URL

from pgflow.contrib.alembic import revision_id
from pgflow.migrations import migrations

ENV_PY = """\
from alembic import context
from sqlalchemy import MetaData, engine_from_config, pool

from pgflow.contrib.alembic import pgflow_revision_directives

config = context.config
target_metadata = MetaData()
options = dict(
    target_metadata=target_metadata,
    autogenerate_plugins=["alembic.autogenerate.*", "pgflow.*"],
    process_revision_directives=pgflow_revision_directives,
)
if config.attributes.get("pgflow_flows") is not None:
    options["pgflow_flows"] = config.attributes["pgflow_flows"]

if context.is_offline_mode():
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
        **options,
    )
    with context.begin_transaction():
        context.run_migrations()
else:
    engine = engine_from_config(
        config.get_section(config.config_ini_section, {}),
        prefix="sqlalchemy.",
        poolclass=pool.NullPool,
    )
    with engine.connect() as connection:
        context.configure(connection=connection, **options)
        with context.begin_transaction():
            context.run_migrations()
"""

ALEMBIC_INI = """\
[alembic]
script_location = %(here)s/migrations
prepend_sys_path = .
path_separator = newline
version_locations =
    %(here)s/migrations/versions
    pgflow.contrib.alembic:versions
sqlalchemy.url = {url}
"""

SCRIPT_MAKO = '''\
"""${message}

Revision ID: ${up_revision}
Revises: ${down_revision | comma,n}
Create Date: ${create_date}
"""
from alembic import op
import sqlalchemy as sa
${imports if imports else ""}

revision = ${repr(up_revision)}
down_revision = ${repr(down_revision)}
branch_labels = ${repr(branch_labels)}
depends_on = ${repr(depends_on)}


def upgrade() -> None:
    ${upgrades if upgrades else "pass"}


def downgrade() -> None:
    ${downgrades if downgrades else "pass"}
'''


def pgflow_head() -> str:
    """The head revision of the ``pgflow`` branch: the newest packaged migration's."""
    return revision_id(migrations()[-1].id)


def sqlalchemy_url(conninfo: str) -> str:
    """A ``postgresql+psycopg`` URL for a libpq conninfo (sockets and all, via the query)."""
    params = conninfo_to_dict(conninfo)
    database = str(params.pop("dbname"))
    query = {key: str(value) for key, value in params.items()}
    url = URL.create("postgresql+psycopg", database=database, query=query)
    return url.render_as_string(hide_password=False)


@dataclass
class AlembicProject:
    """A temporary Alembic project wired to one database."""

    root: Path
    db_url: str

    @property
    def ini(self) -> Path:
        return self.root / "alembic.ini"

    @property
    def versions(self) -> Path:
        return self.root / "migrations" / "versions"

    def config(self, output: io.StringIO | None = None, **attributes: Any) -> Config:
        config = Config(str(self.ini), output_buffer=output)
        config.attributes.update(attributes)
        return config

    def upgrade(self, target: str = "heads") -> None:
        command.upgrade(self.config(), target)

    def downgrade(self, target: str) -> None:
        command.downgrade(self.config(), target)

    def offline(self, target: str = "heads") -> str:
        buffer = io.StringIO()
        command.upgrade(self.config(buffer), target, sql=True)
        return buffer.getvalue()

    def flows_file(self, name: str, source: str) -> Path:
        path = self.root / f"{name}.py"
        path.write_text(textwrap.dedent(source), encoding="utf-8")
        return path

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.db_url) as conn:
            return conn.execute(sql.encode()).fetchall()

    def flows(self) -> dict[str, str]:
        """Deployed flows: slug -> checksum (empty when the schema is absent)."""
        if not self.query("select to_regclass('pgflow.flows')")[0][0]:
            return {}
        return dict(self.query("select flow_slug, checksum from pgflow.flows"))  # type: ignore[arg-type]

    def alembic_versions(self) -> set[str]:
        if not self.query("select to_regclass('public.alembic_version')")[0][0]:
            return set()
        return {row[0] for row in self.query("select version_num from alembic_version")}


def make_project(root: Path, db_url: str) -> AlembicProject:
    """Write alembic.ini, env.py and script.py.mako into ``root``."""
    (root / "migrations" / "versions").mkdir(parents=True)
    (root / "migrations" / "env.py").write_text(ENV_PY, encoding="utf-8")
    (root / "migrations" / "script.py.mako").write_text(SCRIPT_MAKO, encoding="utf-8")
    url = sqlalchemy_url(db_url).replace("%", "%%")
    (root / "alembic.ini").write_text(ALEMBIC_INI.format(url=url), encoding="utf-8")
    return AlembicProject(root, db_url)


@pytest.fixture
def project(tmp_path: Path, empty_db_url: str) -> Iterator[AlembicProject]:
    """An Alembic project over an empty database (no pgflow schema yet)."""
    yield make_project(tmp_path / "project", empty_db_url)


@pytest.fixture
def installed_project(tmp_path: Path, db_url: str) -> Iterator[AlembicProject]:
    """An Alembic project over a database where `pgflow install` already ran."""
    yield make_project(tmp_path / "project", db_url)
