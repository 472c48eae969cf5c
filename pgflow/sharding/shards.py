"""Shards as pgflow sees them: an ordered list of URLs, each a full pgflow database.

A shard's place in the list is its index: the proxy routes a run to shard
``shard_of(run_id)`` (docs/sharding.md), so the list given to ``pgflow install --proxy``,
to workers and to deploys is the same list in the same order. This module checks such a
list, turns a URL into the connection string the proxy's server uses, reads a proxy's
shards back, and compares the shards' schema versions.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.rows import dict_row

from pgflow.db.errors import describe_conninfo, redact
from pgflow.errors import ConfigurationError, PgflowError, SchemaError
from pgflow.sql import query

__all__ = [
    "PROXY_VERSION",
    "Shard",
    "check_versions",
    "on_shard",
    "proxy_conninfo",
    "proxy_shard_urls",
    "shard_list",
]

PROXY_VERSION = 1
"""The version of the proxy's SQL (``pgflow/sql/proxy``) this package installs."""

TCP_USER_TIMEOUT_MS = "5000"
"""Added to a shard's connection string on the proxy unless it has one: PL/Proxy itself
has no connect timeout, so a shard whose server is gone would hold a call for the
kernel's TCP timeout (minutes); with it the call fails after about 5 s."""


@dataclass(frozen=True, slots=True)
class Shard:
    """One shard: its index (its place in the list) and its URL.

    Attributes:
        index: 0-based; the proxy's routing maps run ids to it.
        count: how many shards the set-up has.
        url: the URL workers and deploys connect to.
    """

    index: int
    count: int
    url: str

    @property
    def label(self) -> str:
        """``shard 1 of 3 (postgresql://app@db2:5432/app)``, no password."""
        return f"shard {self.index} of {self.count} ({describe_conninfo(self.url)})"


def on_shard(shard: Shard, error: PgflowError) -> PgflowError:
    """The same error (class and attributes), its message prefixed with the shard's label."""
    named = copy.copy(error)
    named.message = f"{shard.label}: {error.message}"
    named.args = (named.message,)
    return named


def shard_list(urls: Iterable[str]) -> tuple[Shard, ...]:
    """Check a list of shard URLs and number them.

    Raises:
        ConfigurationError: no URL, a URL that cannot be parsed, or one database twice.
    """
    given = list(urls)
    if not given or not all(isinstance(u, str) and u.strip() for u in given):
        raise ConfigurationError(
            f"shards must be a non-empty list of database URLs, got {given!r}",
            hint="pass each shard's URL: --shard URL --shard URL (or shards=[url, ...])",
        )
    seen: dict[tuple[str, ...], int] = {}
    for index, url in enumerate(given):
        key = _identity(url, index)
        if key in seen:
            raise ConfigurationError(
                f"shard {index} ({describe_conninfo(url)}) is the same database as shard "
                f"{seen[key]}",
                hint="each shard is a database of its own; list each one once",
            )
        seen[key] = index
    return tuple(Shard(i, len(given), url) for i, url in enumerate(given))


def _identity(url: str, index: int) -> tuple[str, ...]:
    try:
        params = conninfo_to_dict(url)
    except psycopg.ProgrammingError as exc:
        reason = redact((str(exc).strip().splitlines() or ["cannot be parsed"])[0])
        raise ConfigurationError(
            f"shard {index}: cannot read its URL: {reason}",
            hint="write it as postgresql://user@host:port/dbname (or libpq key=value pairs)",
        ) from None
    return tuple(str(params.get(k) or "") for k in ("host", "hostaddr", "port", "dbname"))


def proxy_conninfo(url: str) -> tuple[str, str | None]:
    """The connection string the proxy's server uses for a shard, and its password.

    The password is left out (the proxy keeps one password for every shard in a user
    mapping, which only superusers can read); ``tcp_user_timeout`` is added unless given.
    """
    params: dict[str, Any] = dict(conninfo_to_dict(url))
    password = params.pop("password", None)
    params.setdefault("tcp_user_timeout", TCP_USER_TIMEOUT_MS)
    return make_conninfo("", **params), password


def proxy_shard_urls(conn: psycopg.Connection[Any]) -> list[str] | None:
    """The shards of the proxy ``conn`` is connected to, in order; None: not a proxy.

    These are the connection strings the proxy's server uses; a password, if any, is
    not among them (give workers ``~/.pgpass`` or ``PGPASSWORD``).
    """
    with conn.cursor(row_factory=dict_row) as cur:
        detected = cur.execute(query("proxy_detect")).fetchone()
        if not detected or not detected["proxy"]:
            return None
        return [row["conninfo"] for row in cur.execute(query("proxy_shards")).fetchall()]


def check_versions(versions: Sequence[tuple[Shard, int | None]]) -> int | None:
    """The schema version every shard has; refuse shards that differ or lack pgflow.

    Args:
        versions: each shard with its pgflow schema version (None: not installed).

    Raises:
        SchemaError: a shard without the pgflow schema, or shards at different versions
            (the message names each odd shard and its version).
    """
    missing = [shard for shard, version in versions if version is None]
    if missing:
        raise SchemaError(
            f"{missing[0].label} has no pgflow schema",
            hint="install it on every shard: `pgflow install --proxy --shard URL ...` "
            "(or `pgflow install --database-url URL` for this one)",
        )
    counts: dict[int | None, int] = {}
    for _, version in versions:
        counts[version] = counts.get(version, 0) + 1
    if len(counts) <= 1:
        return next(iter(counts), None)
    common = max(counts, key=lambda v: (counts[v], v or 0))
    odd = [f"{s.label} has version {v}" for s, v in versions if v != common]
    raise SchemaError(
        f"the shards' pgflow schema versions differ: {'; '.join(odd)}, the others {common}",
        hint="upgrade every shard to this package's schema: `pgflow install --proxy --shard "
        "URL ...` (or `pgflow install --database-url URL` on each odd shard), then retry",
    )
