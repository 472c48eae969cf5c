"""Translate psycopg errors into :mod:`pgflow.errors` classes, in exactly one place.

pgflow's SQL raises with its own SQLSTATEs (``PGF01``..``PGF11``), a message naming the
flow/step/run, and a hint. :func:`wrap_db_errors` maps ``exc.sqlstate`` to a class, puts
``diag.message_primary`` (and ``diag.message_detail``) in the message and
``diag.message_hint`` in ``hint``, and keeps the psycopg error as ``__cause__``. It never
parses message text. Connection failures name the server, never the password.

Use it as a context manager (``with`` or ``async with``) or as a decorator on sync or
async functions::

    @wrap_db_errors
    async def start(...): ...

    with wrap_db_errors(conninfo=url):
        conn = psycopg.connect(url)
"""

from __future__ import annotations

import functools
import inspect
import re
from collections.abc import Callable
from types import TracebackType
from typing import Any, TypeVar, overload

import psycopg
from psycopg.conninfo import conninfo_to_dict

from pgflow import errors as e

__all__ = [
    "DbErrorTranslator",
    "describe_conninfo",
    "redact",
    "translate_error",
    "wrap_db_errors",
]

F = TypeVar("F", bound=Callable[..., Any])

PGFLOW_SQLSTATES: dict[str, type[e.PgflowError]] = {
    "PGF01": e.InvalidSlugError,
    "PGF02": e.UnknownFlowError,
    "PGF03": e.DefinitionError,
    "PGF04": e.ShapeMismatchError,
    "PGF05": e.DefinitionError,
    "PGF06": e.FlowNotReadyError,
    "PGF07": e.UnknownRunError,
    "PGF08": e.InvalidInputError,
    "PGF09": e.CompileError,
    "PGF10": e.SchemaError,
    "PGF11": e.ShapeMismatchError,  # retry_run: the flow's shape changed since the run started
    "PGF15": e.ValueStoreError,  # values by reference: unknown, sealed or mismatched blobs
    "PGF20": e.DatabaseError,  # a pgflow proxy cannot reach a shard (transient, db/retry.py)
    "PGF21": e.ConfigurationError,  # a pgflow proxy used where a shard is needed, or misset
}
# invalid_schema_name, undefined_table, undefined_function: the schema is missing or old.
_SCHEMA_MISSING = frozenset({"3F000", "42P01", "42883"})
# invalid_authorization_specification, invalid_password, invalid_catalog_name (no database).
_BAD_SETTINGS = frozenset({"28000", "28P01", "3D000"})
_INSTALL_HINT = (
    "If the pgflow schema is missing or older than this package, run `pgflow install` "
    "(or `pgflow check` to compare versions)."
)
_CONNECT_HINT = (
    "Check that the server is running and that the host, port, user, password and database "
    "name in the URL are right (create the database first if it does not exist), or pass "
    "another --database-url."
)
_PRIVILEGE_HINT = (
    "Connect as the role that installed pgflow, or have a DBA grant this role pgflow_worker "
    "(workers) or pgflow_reader (inspection)."
)
_URL_PASSWORD = re.compile(r"(\w+://[^:/@\s]*:)[^@\s]*@")


def describe_conninfo(conninfo: str) -> str:
    """Return the URL as something safe to print: user, host, port and database, no password.

    A multi-host URL (``host=a,b``) lists every ``host:port`` and its
    ``target_session_attrs``: ``postgresql://u@a:5432,b:5432/db?target_session_attrs=...``.
    """
    try:
        params = conninfo_to_dict(conninfo)
    except psycopg.Error:
        return "<unparseable database URL>"
    host = params.get("host") or params.get("hostaddr")
    if "," in str(host or ""):
        return _servers(params)
    return _server(params.get("user"), host, params.get("port"), params.get("dbname"))


def _servers(params: dict[str, Any]) -> str:
    """A multi-host URL: each host with its port (one port may serve them all)."""
    hosts = str(params.get("host") or params.get("hostaddr")).split(",")
    ports = str(params.get("port") or "").split(",")
    ports = ports * len(hosts) if len(ports) == 1 else ports
    pairs = [
        (host or "localhost") + (f":{port}" if port else "")
        for host, port in zip(hosts, ports, strict=False)
    ]
    userinfo = f"{params['user']}@" if params.get("user") else ""
    attrs = params.get("target_session_attrs")
    query = [f"target_session_attrs={attrs}"] if attrs else []
    if any(host.startswith("/") for host in hosts):  # unix sockets: the libpq query form
        port = f"&port={params['port']}" if params.get("port") else ""
        query.insert(0, f"host={','.join(hosts)}{port}")
        pairs = []
    tail = f"?{'&'.join(query)}" if query else ""
    return f"postgresql://{userinfo}{','.join(pairs)}/{params.get('dbname') or ''}{tail}"


def _server(user: object, host: object, port: object, db: object) -> str:
    userinfo = f"{user}@" if user else ""
    port_text = str(port or "")
    if str(host or "").startswith("/"):
        port_query = f"&port={port_text}" if port_text else ""
        return f"postgresql://{userinfo}/{db or ''}?host={host}{port_query}"
    port_part = f":{port_text}" if port_text else ""
    return f"postgresql://{userinfo}{host or 'localhost'}{port_part}/{db or ''}"


def redact(text: str) -> str:
    """Mask the password of any ``scheme://user:password@`` URL inside ``text``."""
    return _URL_PASSWORD.sub(r"\1***@", text)


def _where(exc: psycopg.Error, conninfo: str | None) -> str | None:
    if conninfo and _multi_host(conninfo):
        return describe_conninfo(conninfo)  # not just the host tried last
    pgconn = exc.pgconn
    if pgconn is not None and pgconn.host:
        values = (pgconn.user, pgconn.host, pgconn.port, pgconn.db)
        return _server(*(v.decode(errors="replace") for v in values))
    return describe_conninfo(conninfo) if conninfo else None


def _multi_host(conninfo: str) -> bool:
    try:
        params = conninfo_to_dict(conninfo)
    except psycopg.Error:
        return False
    return "," in str(params.get("host") or params.get("hostaddr") or "")


def _reason(exc: psycopg.Error) -> str:
    """The first line of a connection error; each host's for a multi-host URL.

    psycopg tries the hosts of a multi-host URL in turn and lists every failure, one
    ``- host: 'a', port: '5432', ...: <reason>`` line each.
    """
    text = str(exc).strip()
    attempts = [line[2:] for line in text.splitlines() if line.startswith("- host: ")]
    if len(attempts) > 1:
        return "every host failed: " + "; ".join(_attempt(line) for line in attempts)
    return text.splitlines()[0] if text else type(exc).__name__


def _attempt(line: str) -> str:
    """``host: 'a', port: '1', hostaddr: ...: connection failed: why`` -> ``a:1: why``."""
    fields = dict(re.findall(r"(\w+): '([^']*)'", line.split(": connection failed: ")[0]))
    why = line.split("failed: ")[-1].strip()
    return f"{fields.get('host', '?')}:{fields.get('port', '?')}: {why}"


def _message(exc: psycopg.Error) -> str:
    diag = exc.diag
    primary = diag.message_primary or str(exc).strip() or type(exc).__name__
    detail = f"\nDetail: {diag.message_detail}" if diag.message_detail else ""
    return redact(primary + detail)


def _attrs(exc: psycopg.Error) -> dict[str, Any]:
    diag = exc.diag
    return {
        "sqlstate": exc.sqlstate,
        "detail": diag.message_detail,
        "constraint_name": diag.constraint_name,
        "schema_name": diag.schema_name,
        "table_name": diag.table_name,
        "column_name": diag.column_name,
    }


def translate_error(exc: psycopg.Error, *, conninfo: str | None = None) -> e.PgflowError:
    """Return the pgflow error for a psycopg error (the caller raises it ``from exc``).

    Args:
        exc: the driver's error.
        conninfo: the URL in use, to name the server when the error does not.
    """
    state = exc.sqlstate
    hint = exc.diag.message_hint or None
    if state in PGFLOW_SQLSTATES:
        return PGFLOW_SQLSTATES[state](_message(exc), hint=hint, **_attrs(exc))
    if state in _SCHEMA_MISSING:
        message = _message(exc) + (f"\nPostgres hint: {hint}" if hint else "")
        return e.SchemaError(message, hint=_INSTALL_HINT, **_attrs(exc))
    if state is None and isinstance(exc, psycopg.ProgrammingError):
        return e.DatabaseError(_message(exc), **_attrs(exc))  # client-side misuse: a bug
    if state is None or state.startswith("08") or state in _BAD_SETTINGS:
        return _connection_error(exc, conninfo)
    if state.startswith("22"):  # data_exception: a value Postgres cannot accept
        return e.InvalidInputError(_message(exc), hint=hint, **_attrs(exc))
    if state == "42501":
        return e.DatabaseError(_message(exc), hint=hint or _PRIVILEGE_HINT, **_attrs(exc))
    return e.DatabaseError(_message(exc), hint=hint, **_attrs(exc))


def _connection_error(exc: psycopg.Error, conninfo: str | None) -> e.PgflowError:
    where = _where(exc, conninfo)
    server = f" at {where}" if where else ""
    reason = redact(_reason(exc))
    attrs = {"sqlstate": exc.sqlstate, "server": where}
    if exc.sqlstate in _BAD_SETTINGS:
        return e.ConfigurationError(
            f"Postgres{server} refused the connection: {reason}",
            hint="Check the user, password and database name in the URL; "
            "create the database first if it does not exist (createdb).",
            **attrs,
        )
    # psycopg sets ``pgconn`` on errors of a connection attempt (libpq gives them no SQLSTATE).
    action = "connect to" if exc.pgconn is not None else "use"
    return e.DatabaseError(
        f"could not {action} Postgres{server}: {reason}", hint=_CONNECT_HINT, **attrs
    )


class DbErrorTranslator:
    """What :func:`wrap_db_errors` returns: a sync/async context manager and decorator."""

    def __init__(self, conninfo: str | None = None) -> None:
        self.conninfo = conninfo

    def __enter__(self) -> None:
        return None

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if isinstance(exc, psycopg.Error):
            raise translate_error(exc, conninfo=self.conninfo) from exc

    async def __aenter__(self) -> None:
        return None

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.__exit__(exc_type, exc, tb)

    def __call__(self, func: F) -> F:
        """Decorate a sync or async function."""
        if inspect.iscoroutinefunction(func):

            @functools.wraps(func)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                async with self:
                    return await func(*args, **kwargs)

            return async_wrapper  # type: ignore[return-value]

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with self:
                return func(*args, **kwargs)

        return wrapper  # type: ignore[return-value]


@overload
def wrap_db_errors(func: F, /) -> F: ...
@overload
def wrap_db_errors(*, conninfo: str | None = None) -> DbErrorTranslator: ...
def wrap_db_errors(
    func: F | None = None, /, *, conninfo: str | None = None
) -> F | DbErrorTranslator:
    """Translate psycopg errors raised inside into :class:`pgflow.errors.PgflowError`.

    Args:
        func: when used as a bare decorator, the function to wrap.
        conninfo: the URL in use, so connection errors can name the server.

    Returns:
        The wrapped function, or a translator usable as ``with``/``async with``/decorator.
    """
    translator = DbErrorTranslator(conninfo)
    return translator if func is None else translator(func)
