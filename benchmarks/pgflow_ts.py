"""The pgflow (TypeScript) baseline: its SQL core, installed by the suite itself.

What is measured is **pgflow 0.8.1** (``@pgflow/core`` on npm), the SQL that pgflow's Edge
Worker drives, in a database of its own on the benchmark's server (its schemas ``pgflow``
and ``pgmq`` would clash with ours). Fetched once into ``~/.cache/pgflow-bench`` (or
``$XDG_CACHE_HOME/pgflow-bench``) with the registries' own clients, checked against pinned
hashes:

- ``npm pack @pgflow/core@0.8.1``: its migrations, ``dist/supabase/migrations/*.sql``,
  applied in file-name order, each in one transaction;
- ``pip download pgmq==1.1.4`` (not a dependency of pgflow-py): the wheel ships pgmq's SQL
  (``pgmq/sql/pgmq.sql``, pgmq 1.13.0; pgflow 0.8 needs pgmq ≥ 1.5), applied as plain
  SQL, since the server has no ``pgmq`` extension to ``CREATE EXTENSION`` from.

Stand-ins for what only Supabase has, the minimum the migrations need:

- the statement ``CREATE EXTENSION IF NOT EXISTS "pgmq" WITH SCHEMA "pgmq"`` of the first
  migration is skipped (pgmq's SQL, loaded before, already made the schema and functions);
- schema ``realtime`` with ``realtime.send(payload jsonb, event text, topic text, private
  boolean default true) returns void`` as a no-op SQL function. On Supabase every call
  inserts a row into ``realtime.messages``; here nothing is written, so the baseline's
  figures are an upper bound of what pgflow 0.8.1 does on this server.

The migrations need nothing else (no roles, ``pg_net``, ``pg_cron`` or other extensions).
No npm or no network: :func:`prepare` returns why, and the suite skips the baseline.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import logging
import os
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from benchmarks.flows import CHAIN_LENGTH, DIAMOND_WIDTH
from benchmarks.server import Server

__all__ = [
    "VERSION",
    "cache_dir",
    "define_flows",
    "install",
    "open_baseline",
    "prepare",
    "reset",
    "unfinished",
]

logger = logging.getLogger(__name__)

VERSION = "0.8.1"
PGMQ_WHEEL = "pgmq==1.1.4"  # ships pgmq's SQL 1.13.0
_TARBALL = f"pgflow-core-{VERSION}.tgz"
_TARBALL_SHA512 = (
    "1252cf90a18f8edb41b2394b25f9f809c31e885c2db9485436e1400f08508dda"
    "e0fa77ad91e38d635da8c5c6cf48132a0565d502e2ab88babed53d5d08f1163d"
)
_WHEEL = "pgmq-1.1.4-py3-none-any.whl"
_WHEEL_SHA256 = "4d9e7aa517295669d46a11d3d13106efbdc738d0e127d84c567b6d4c936e7d1d"
_MIGRATIONS = "package/dist/supabase/migrations/"
_SKIPPED = 'CREATE EXTENSION IF NOT EXISTS "pgmq" WITH SCHEMA "pgmq";'
REALTIME_STAND_IN = """
create schema if not exists realtime;
create or replace function realtime.send(
  payload jsonb, event text, topic text, private boolean default true
) returns void language sql as 'select null::void';
"""
FLOW_SLUGS = ("bench_single", "bench_chain", "bench_diamond", "bench_fanout", "bench_warmup")


def cache_dir() -> Path:
    """Where the fetched packages are kept between runs."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "pgflow-bench"


def open_baseline(server: Server) -> tuple[Server | None, str | None]:
    """A database on ``server`` with pgflow 0.8.1 and the benchmark flows, or why not."""
    name = str(conninfo_to_dict(server.url)["dbname"]).replace("pgflow_bench", "pgflow_ts_bench")
    url = server.create_database(name)
    why = prepare(url)
    if why is not None:
        logger.warning("%s", why)
        return None, why
    logger.info("pgflow %s installed in %s", VERSION, name)
    return dataclasses.replace(server, url=url, stat_statements=False, walinspect=False), None


def prepare(url: str) -> str | None:
    """Fetch (or reuse) the sources and install them into ``url``; None, or why not."""
    try:
        migrations, pgmq_sql = _sources(cache_dir())
    except (OSError, RuntimeError, subprocess.SubprocessError) as exc:
        return f"pgflow {VERSION} baseline skipped: {exc}"
    install(url, migrations, pgmq_sql)
    define_flows(url)
    return None


def _sources(cache: Path) -> tuple[list[tuple[str, str]], str]:
    cache.mkdir(parents=True, exist_ok=True)
    tarball = _fetched(
        cache / _TARBALL,
        [
            "npm",
            "pack",
            f"@pgflow/core@{VERSION}",
            "--pack-destination",
            str(cache),
            "--fetch-retries=1",
        ],
        "sha512",
        _TARBALL_SHA512,
        "could not fetch @pgflow/core from the npm registry",
    )
    wheel = _fetched(
        cache / _WHEEL,
        [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
         "--disable-pip-version-check", "--quiet", PGMQ_WHEEL, "-d", str(cache)],
        "sha256",
        _WHEEL_SHA256,
        "could not fetch pgmq from PyPI",
    )  # fmt: skip
    with tarfile.open(fileobj=io.BytesIO(tarball)) as archive:
        migrations = [
            (Path(m.name).name, _read(archive, m))
            for m in sorted(archive.getmembers(), key=lambda m: m.name)
            if m.name.startswith(_MIGRATIONS) and m.name.endswith(".sql")
        ]
    with zipfile.ZipFile(io.BytesIO(wheel)) as zipped:
        pgmq_sql = zipped.read("pgmq/sql/pgmq.sql").decode()
    if not migrations:
        raise RuntimeError(f"no migrations under {_MIGRATIONS} in {_TARBALL}")
    return migrations, pgmq_sql


def _read(archive: tarfile.TarFile, member: tarfile.TarInfo) -> str:
    handle = archive.extractfile(member)
    if handle is None:
        raise RuntimeError(f"{member.name} is not a file")
    return handle.read().decode()


def _fetched(path: Path, command: list[str], algorithm: str, digest: str, why: str) -> bytes:
    """The file's bytes, fetched with ``command`` unless cached; its hash must match."""
    if not path.exists():
        logger.info("fetching %s", path.name)
        try:
            subprocess.run(command, check=True, capture_output=True, text=True, timeout=300)
        except FileNotFoundError:
            raise RuntimeError(f"{why}: {command[0]} is not installed") from None
        except subprocess.CalledProcessError as exc:
            raise RuntimeError(f"{why}: {_gist(exc.stderr or exc.stdout or '') or exc}") from None
    data = path.read_bytes()
    if hashlib.new(algorithm, data).hexdigest() != digest:
        raise RuntimeError(f"{path} does not have the pinned {algorithm}: delete it to refetch")
    return data


def _gist(output: str) -> str:
    """The first few meaningful lines of a client's error output, on one line."""
    lines = [
        line.strip()
        for line in output.splitlines()
        if line.strip() and "complete log" not in line and not line.strip().endswith(")")
    ]
    return "; ".join(lines[:4])


def install(url: str, migrations: list[tuple[str, str]], pgmq_sql: str) -> None:
    """pgmq's SQL, the stand-ins, then the migrations, each file in one transaction."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.add_notice_handler(lambda _: None)  # "schema pgmq already exists, skipping"
        for name, text in [
            ("pgmq.sql", pgmq_sql),
            ("stand-ins", REALTIME_STAND_IN),
            *((n, t.replace(_SKIPPED, "-- skipped: " + _SKIPPED)) for n, t in migrations),
        ]:
            try:
                with conn.transaction():
                    conn.execute(text.encode())
            except psycopg.Error as exc:
                raise RuntimeError(f"pgflow {VERSION}: {name} failed: {exc}") from exc


def define_flows(url: str) -> None:
    """The benchmark's flows, same slugs and shapes as ours (``benchmarks.flows``)."""
    chain = [f"s{i:02d}" for i in range(CHAIN_LENGTH)]
    middle = [f"p{i}" for i in range(DIAMOND_WIDTH)]
    steps: list[tuple[str, str, list[str], str]] = [
        ("bench_single", "task", [], "single"),
        *(("bench_chain", s, chain[i - 1 : i], "single") for i, s in enumerate(chain)),
        ("bench_diamond", "root", [], "single"),
        *(("bench_diamond", p, ["root"], "single") for p in middle),
        ("bench_diamond", "join", middle, "single"),
        ("bench_fanout", "items", [], "single"),
        ("bench_fanout", "each", ["items"], "map"),
        ("bench_fanout", "total", ["each"], "single"),
        ("bench_warmup", "a", [], "single"),
        ("bench_warmup", "b", ["a"], "single"),
    ]
    with psycopg.connect(url, autocommit=True) as conn:
        for flow in FLOW_SLUGS:
            conn.execute("select pgflow.create_flow(%s)", [flow])
        for flow, step, deps, step_type in steps:
            conn.execute(
                "select pgflow.add_step(%s, %s, %s::text[], step_type => %s)",
                [flow, step, deps, step_type],
            )


def reset(url: str) -> None:
    """Empty the runtime tables and the flows' queues and archives."""
    queues = [sql.Identifier("pgmq", f"{p}_{flow}") for flow in FLOW_SLUGS for p in ("q", "a")]
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            sql.SQL(
                "truncate pgflow.runs, pgflow.step_states, pgflow.step_tasks, pgflow.workers, {}"
            ).format(sql.SQL(", ").join(queues))
        )


def unfinished(conn: psycopg.Connection[Any], flow: str, leaf: str, elements: int | None) -> int:
    """Runs not completed with their leaf's key; for a map, missing completed map tasks."""
    row = conn.execute(
        "select count(*) from pgflow.runs"
        " where flow_slug = %s and (status <> 'completed' or not output ? %s)",
        [flow, leaf],
    ).fetchone()
    bad = int(row[0]) if row else 0
    if elements is not None:
        row = conn.execute(
            "select count(*) from pgflow.step_tasks"
            " where flow_slug = %s and step_slug = 'each' and status = 'completed'",
            [flow],
        ).fetchone()
        runs = conn.execute("select count(*) from pgflow.runs where flow_slug = %s", [flow])
        expected = elements * int((runs.fetchone() or [0])[0])
        bad += abs(expected - (int(row[0]) if row else 0))
    return bad
