"""Serve the viewer: check the settings, bind the port, run uvicorn until Ctrl+C.

The socket is bound here, before uvicorn starts, so a port in use is a one-line error
with a hint instead of a server log; ``--port 0`` picks a free port.
"""

from __future__ import annotations

import errno
import socket
from collections.abc import Callable
from typing import Final

import uvicorn

from pgflow.db.connection import connect
from pgflow.errors import ConfigurationError
from pgflow.ui.app import create_app
from pgflow.ui.settings import UiSettings
from pgflow.ui.viewer import Viewer

__all__ = ["UiServer", "bind", "prepare", "serve"]

SHUTDOWN_GRACE: Final = 1  # seconds open event streams get when the server stops


class UiServer(uvicorn.Server):
    """uvicorn, ending the viewer's event streams first when it stops.

    Browsers keep event streams open; uvicorn would wait for them, then cancel them with
    an error in the log. Ending them first lets the server stop at once and cleanly.
    """

    def __init__(self, config: uvicorn.Config, viewer: Viewer) -> None:
        super().__init__(config)
        self.viewer = viewer

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        """End the streams, then stop as uvicorn does."""
        if self.viewer.feeds is not None:
            self.viewer.feeds.end_streams()
        await super().shutdown(sockets)


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port``.

    Raises:
        ConfigurationError: the port is in use, or the address is not one of this machine.
    """
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        sock = socket.socket(family, kind, proto)
    except (OSError, UnicodeError) as exc:
        raise ConfigurationError(
            f"cannot listen on {host}: {exc}", hint="pass an address of this machine to --host"
        ) from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(128)
    except OSError as exc:
        sock.close()
        raise _bind_error(host, port, exc) from None
    return sock


def _bind_error(host: str, port: int, exc: OSError) -> ConfigurationError:
    if exc.errno == errno.EADDRINUSE:
        return ConfigurationError(
            f"port {port} on {host} is already in use",
            hint=f"stop what listens there, or pick another port: pgflow ui --port {port + 1}",
        )
    return ConfigurationError(
        f"cannot listen on {host}:{port}: {exc.strerror or exc}",
        hint="pass an address of this machine to --host and a free port to --port",
    )


def prepare(
    settings: UiSettings, conninfo: str, reader_conninfo: str | None = None
) -> tuple[UiServer, socket.socket, UiSettings]:
    """Check the settings and the database (and the read replica pages read from, when
    given), bind, and build the server (not started).

    Returns:
        The server, its socket, and the settings with the port actually bound.

    Raises:
        ConfigurationError: refused settings (see :meth:`UiSettings.check`) or a bind error.
        DatabaseError: the database cannot be reached.
    """
    settings.check()
    connect(conninfo).close()  # a wrong URL fails here, not on the first page
    if reader_conninfo is not None:
        connect(reader_conninfo).close()
    sock = bind(settings.host, settings.port)
    bound = settings.with_port(sock.getsockname()[1])
    app = create_app(bound, conninfo, reader_conninfo)
    config = uvicorn.Config(
        app,
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=SHUTDOWN_GRACE,
        lifespan="on",
    )
    return UiServer(config, app.state.viewer), sock, bound


def serve(
    settings: UiSettings,
    conninfo: str,
    announce: Callable[[str], None] = print,
    reader_conninfo: str | None = None,
) -> None:
    """Serve until interrupted; ``announce`` gets the line that says where."""
    server, sock, bound = prepare(settings, conninfo, reader_conninfo)
    mode = " (read-only)" if bound.read_only else ""
    announce(f"pgflow ui{mode}: open {bound.url(with_token=True)} (Ctrl+C to stop)")
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()
