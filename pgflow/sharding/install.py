"""``pgflow install --proxy``: install the shards and the PL/Proxy database in front of them.

:func:`install_proxy` does, in order:

1. install or upgrade the pgflow schema on every shard with the normal installer (each
   shard is a full pgflow database), and refuse shards whose versions then differ;
2. in one transaction on the proxy database (under an advisory lock, so installers queue
   up): apply the proxy's SQL files (``pgflow/sql/proxy/*.sql``, idempotent), point it at
   the shards (``pgflow_proxy.configure``), define the RUN ON ALL mirrors of the
   definition functions from the shards' own signatures, and ask every shard through
   PL/Proxy for its schema version: a shard the proxy's *server* cannot reach, or at
   another version, rolls everything back with an error naming it.

Running it again upgrades the shards and the proxy; the number of shards cannot change
(the routing depends on it), their URLs can.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib.resources import files
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from pgflow.db.connection import connect
from pgflow.db.errors import describe_conninfo, translate_error, wrap_db_errors
from pgflow.db.schema import InstallResult
from pgflow.db.schema import install as install_schema
from pgflow.errors import ConfigurationError, DatabaseError, PgflowError, SchemaError
from pgflow.sharding.shards import (
    PROXY_VERSION,
    Shard,
    check_versions,
    on_shard,
    proxy_conninfo,
    shard_list,
)
from pgflow.sql import query

__all__ = ["ProxyInstallResult", "install_proxy", "proxy_sql_files"]


@dataclass(frozen=True, slots=True)
class ProxyInstallResult:
    """What :func:`install_proxy` did.

    Attributes:
        shards: each shard with what installing its schema did.
        partitions: the PL/Proxy partition count (the power of two >= the shard count).
        schema_version: the pgflow schema version of every shard.
        mirrored: how many RUN ON ALL functions the proxy defines.
    """

    shards: tuple[tuple[Shard, InstallResult], ...]
    partitions: int
    schema_version: int | None
    mirrored: int


def proxy_sql_files() -> list[tuple[str, str]]:
    """The proxy's SQL files ``(name, text)`` in the order they run."""
    folder = files("pgflow.sql") / "proxy"
    entries = [e for e in folder.iterdir() if e.is_file() and e.name.endswith(".sql")]
    return [(e.name, e.read_text(encoding="utf-8")) for e in sorted(entries, key=lambda e: e.name)]


def install_proxy(proxy_url: str, shard_urls: Iterable[str]) -> ProxyInstallResult:
    """Install the shards' schema and the proxy in front of them (see the module docstring).

    Args:
        proxy_url: the proxy database (its server needs PL/Proxy; connect as a superuser).
        shard_urls: every shard, in routing order.

    Raises:
        ConfigurationError: no or duplicate shards, the proxy among them, PL/Proxy missing,
            the proxy database holding a pgflow schema, another number of shards than
            the proxy was installed with, or shards needing different passwords.
        SchemaError: shards at different schema versions, or a proxy newer than this package.
        DatabaseError: a shard or the proxy cannot be reached (the message names it).
    """
    shards = shard_list(shard_urls)
    _refuse_proxy_among(proxy_url, shards)
    conninfos, password = _proxy_conninfos(shards)
    with wrap_db_errors(), connect(proxy_url) as conn:
        _check_proxy_database(conn, proxy_url)  # before any shard is touched
    installed = tuple((shard, _install_shard(shard)) for shard in shards)
    version = check_versions([(shard, result.version) for shard, result in installed])
    with wrap_db_errors(), connect(proxy_url) as conn, conn.transaction():
        conn.execute(query("proxy_install_lock"))
        _check_proxy_database(conn, proxy_url)
        for name, text in proxy_sql_files():
            _apply(conn, name, text)
        partitions = _configure(conn, conninfos, password, version)
        mirrored = _mirror(conn, shards[0])
        _verify(conn, shards)
    return ProxyInstallResult(installed, partitions, version, mirrored)


def _refuse_proxy_among(proxy_url: str, shards: Sequence[Shard]) -> None:
    try:
        shard_list([*(s.url for s in shards), proxy_url])
    except ConfigurationError:
        raise ConfigurationError(
            f"the proxy database {describe_conninfo(proxy_url)} is also listed as a shard",
            hint="give the proxy a database of its own (it holds no runs); shards are the "
            "databases that do",
        ) from None


def _proxy_conninfos(shards: Sequence[Shard]) -> tuple[list[str], str | None]:
    pairs = [proxy_conninfo(shard.url) for shard in shards]
    passwords = {password for _, password in pairs if password is not None}
    if len(passwords) > 1:
        raise ConfigurationError(
            "the shard URLs carry different passwords; the proxy holds one password for "
            "every shard",
            hint="use one role and password on every shard, or leave passwords out of the "
            "URLs and put them in ~/.pgpass of the proxy's server (postgres user)",
        )
    return [conninfo for conninfo, _ in pairs], next(iter(passwords), None)


def _install_shard(shard: Shard) -> InstallResult:
    try:
        return install_schema(shard.url)
    except PgflowError as exc:
        raise on_shard(shard, exc) from exc


def _check_proxy_database(conn: psycopg.Connection[Any], url: str) -> None:
    with conn.cursor(row_factory=dict_row) as cur:
        found = cur.execute(query("proxy_detect")).fetchone() or {}
        if found.get("pgflow"):
            raise ConfigurationError(
                f"{describe_conninfo(url)} has the pgflow schema: it is a pgflow database, "
                "not a proxy",
                hint="create an empty database for the proxy (createdb pgflow_proxy) and "
                "pass its URL as --database-url",
            )
        if not (cur.execute(query("proxy_plproxy_available")).fetchone() or {}).get("available"):
            raise ConfigurationError(
                f"PL/Proxy is not installed on the server of {describe_conninfo(url)}",
                hint="install it there (Debian/Ubuntu: apt-get install "
                "postgresql-<major>-plproxy; https://plproxy.github.io), then run this again",
            )
        if found.get("proxy"):
            state = cur.execute(query("proxy_state")).fetchone() or {}
            if (state.get("proxy_version") or 0) > PROXY_VERSION:
                raise SchemaError(
                    f"the proxy at {describe_conninfo(url)} was installed by a newer pgflow "
                    f"(proxy version {state['proxy_version']}, this package {PROXY_VERSION})",
                    hint="upgrade pgflow-py to the version that installed it",
                )


def _apply(conn: psycopg.Connection[Any], name: str, text: str) -> None:
    try:
        conn.execute(text.encode("utf-8"))  # no parameters: one simple-protocol batch
    except psycopg.Error as exc:
        cause = translate_error(exc)
        raise DatabaseError(
            f"pgflow proxy file {name} failed: {cause.message}", hint=cause.hint
        ) from exc


def _configure(
    conn: psycopg.Connection[Any], conninfos: list[str], password: str | None, version: int | None
) -> int:
    params = {
        "conninfos": conninfos,
        "password": password,
        "schema_version": version,
        "proxy_version": PROXY_VERSION,
    }
    row = conn.execute(query("proxy_configure"), params).fetchone()
    return int(row[0]) if row else 0


def _mirror(conn: psycopg.Connection[Any], first: Shard) -> int:
    """Define the proxy's RUN ON ALL functions with the first shard's signatures."""
    row = conn.execute(query("proxy_broadcast_functions")).fetchone()
    names = list(row[0]) if row else []
    with connect(first.url) as shard, shard.cursor(row_factory=dict_row) as cur:
        signatures = cur.execute(query("shard_function_signatures"), {"names": names}).fetchall()
    mirrored = conn.execute(query("proxy_mirror_functions"), {"functions": Jsonb(signatures)})
    found = mirrored.fetchone()
    return int(found[0]) if found else 0


def _verify(conn: psycopg.Connection[Any], shards: Sequence[Shard]) -> None:
    """Ask every shard through PL/Proxy: the proxy's server must reach each one."""
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(query("proxy_shard_status")).fetchall()
    for row, shard in zip(rows, shards, strict=True):
        if not row["reachable"]:
            raise DatabaseError(
                f"the proxy's server cannot reach {shard.label}: {row['error']}",
                hint="the proxy connects to the shards from its own server: give URLs that "
                "work there (host names, ports, ~/.pgpass of its postgres user); nothing "
                "was changed on the proxy",
            )
    check_versions([(s, r["schema_version"]) for s, r in zip(shards, rows, strict=True)])
